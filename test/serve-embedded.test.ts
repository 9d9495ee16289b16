import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AuthzClient, deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';
import { startServer, tempHome } from './helpers/spawn';

const BOOT = 'bootstrap-secret-for-tests-0123456789';

test('`serve` on the embedded store with only Node: bootstrap allowed, no token 401, SIGTERM drains and exits 0', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  // Ports chosen by the OS and read back from the "serving" line: no port another process may hold.
  const server = await startServer({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, { home: home.dir });
  t.after(() => server.stop());
  const client = new AuthzClient(server.grpcPort);
  t.after(() => client.close());
  assert.equal((await fetch(`${server.url}/readyz`)).status, 200);
  const ok = await client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${BOOT}` } });
  assert.equal(okHeaders(ok)['x-orcheo-subject'], 'bootstrap');
  const denied = await client.check({ path: '/api/workflows' });
  assert.equal(deniedStatus(denied), 401);
  assert.deepEqual(deniedBody(denied), { message: 'Missing bearer token', code: 'auth.missing_token', request_id: denied.dynamic_metadata?.fields['decision_id']?.stringValue });
  assert.match(server.logs(), /embedded token store/);
  assert.match(server.logs(), /authz-db/, 'stored under ~/.orcheo/authz-db by default');
  assert.ok(!server.logs().includes(BOOT), 'the bootstrap token never reaches the logs');
  assert.equal(await server.stop(), 0, server.logs().slice(-2000));
  assert.match(server.logs(), /"msg":"stopped"/);
});
