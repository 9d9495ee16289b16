import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { startTestApp } from './helpers/app';
import { AuthzClient, deniedBody, type CheckResult } from './helpers/grpc-client';
import { createTestSchema, PG_SKIP_REASON, pgReachable, type TestSchema } from './helpers/pg';
import { adminRequest, startServer, tempHome, type ServerProcess } from './helpers/spawn';

const BOOT = 'bootstrap-secret-for-clock-tests-0123456789';
const ENV = { ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_MODE: 'required' };
// libfaketime preloaded into node itself: the `faketime` wrapper forks, so stopping it would
// orphan the server.
const FAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

async function setup(t: TestContext): Promise<TestSchema | undefined> {
  if (!(await pgReachable())) return void t.skip(PG_SKIP_REASON);
  if (!existsSync(FAKETIME)) return void t.skip('faketime not installed');
  const schema = await createTestSchema('clock');
  t.after(() => schema.drop());
  return schema;
}

/** `serve` on the test schema with its clock shifted by `offset` (faketime syntax). */
async function skewedReplica(t: TestContext, schema: TestSchema, offset: string): Promise<ServerProcess> {
  const home = tempHome();
  const s = await startServer({ ORCHEO_AUTH_DATABASE_URL: schema.url, ...ENV, LD_PRELOAD: FAKETIME, FAKETIME: offset }, { home: home.dir });
  t.after(async () => {
    await s.stop();
    home.remove();
  });
  return s;
}

const check = (c: AuthzClient, token: string): Promise<CheckResult> => c.check({ method: 'GET', path: '/api/ping', headers: { authorization: `Bearer ${token}` } });

/** Polls until the Check outcome matches `want` or the bound passes; returns the last outcome. */
async function until(c: AuthzClient, token: string, want: (r: CheckResult) => boolean, boundMs = 8000): Promise<CheckResult> {
  const end = Date.now() + boundMs;
  for (;;) {
    const r = await check(c, token);
    if (want(r) || Date.now() > end) return r;
    await new Promise((res) => setTimeout(res, 100));
  }
}

const allowed = (r: CheckResult) => r.ok_response !== undefined && r.ok_response !== null;
const revoked = (r: CheckResult) => !allowed(r) && deniedBody(r).code === 'auth.token_revoked';

test('a replica whose clock runs 2 minutes fast revokes: a normal-clock replica refuses the token at once', async (t) => {
  const schema = await setup(t);
  if (!schema) return;
  const fast = await skewedReplica(t, schema, '+120s');
  const normal = await startTestApp(ENV, 'pg', schema);
  t.after(() => normal.stop());
  const created = await adminRequest(fast.url, 'POST', '', { token: BOOT, body: { id: 'skewed', scopes: ['workflows:read'] } });
  assert.equal(created.status, 201, created.text);
  const secret = created.body.secret as string;
  assert.ok(allowed(await until(normal.client, secret, allowed)), 'the token reaches the normal replica');
  // Issued on the DB clock, not 2 minutes in the future.
  assert.ok(Math.abs(Date.parse(created.body.issued_at) - Date.now()) < 60_000, created.body.issued_at);

  const r = await adminRequest(fast.url, 'DELETE', '/skewed', { token: BOOT });
  assert.equal(r.status, 200, r.text);
  const started = Date.now();
  const last = await until(normal.client, secret, revoked);
  t.diagnostic(`refused after ${Date.now() - started} ms`);
  assert.ok(revoked(last), `still ${allowed(last) ? 'allowed' : deniedBody(last).code} on the normal replica`);
});

test('a replica whose clock runs 2 minutes slow refuses a token revoked elsewhere', async (t) => {
  const schema = await setup(t);
  if (!schema) return;
  const normal = await startTestApp(ENV, 'pg', schema);
  t.after(() => normal.stop());
  const slow = await skewedReplica(t, schema, '-120s');
  const client = new AuthzClient(slow.grpcPort);
  t.after(() => client.close());
  const created = await adminRequest(`http://127.0.0.1:${normal.app.httpPort}`, 'POST', '', { token: BOOT, body: { id: 'elsewhere', scopes: ['workflows:read'] } });
  assert.equal(created.status, 201, created.text);
  const secret = created.body.secret as string;
  assert.ok(allowed(await until(client, secret, allowed)), 'the token reaches the slow replica');

  assert.equal((await adminRequest(`http://127.0.0.1:${normal.app.httpPort}`, 'DELETE', '/elsewhere', { token: BOOT })).status, 200);
  const last = await until(client, secret, revoked);
  assert.ok(revoked(last), `still ${allowed(last) ? 'allowed' : deniedBody(last).code} on the slow replica`);
});
