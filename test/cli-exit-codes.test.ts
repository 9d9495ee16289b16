/**
 * Exit codes by kind, from the one table (errors/api.ts): a supervisor can tell a configuration
 * mistake (2: fix it, do not restart in a loop) from an unreachable store (3: retry later).
 */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { childStore, embeddedStoreAt } from './helpers/pglite-template';
import { closedPort, runCli, startServer, tempHome } from './helpers/spawn';

const PORTS = { ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0' };

test('serve: invalid configuration exits 2, an invalid policy file 2, an unreachable Postgres 3', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  const config = await runCli(['serve'], { ...PORTS, ORCHEO_AUTH_MODE: 'sometimes' }, { home: home.dir });
  assert.equal(config.code, 2, config.stderr);
  assert.match(config.stderr, /ORCHEO_AUTH_MODE/);

  const policyFile = join(home.dir, 'policy.yaml');
  writeFileSync(policyFile, 'rules:\n  - path: /api/*\n    auth: sometimes\n');
  const db = await embeddedStoreAt(join(home.dir, 'db'));
  const policy = await runCli(['serve'], { ...PORTS, ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: db, ORCHEO_AUTH_POLICY_FILE: policyFile }, { home: home.dir });
  assert.equal(policy.code, 2, policy.stdout + policy.stderr);
  assert.match(policy.stdout + policy.stderr, /policy\.yaml/);

  const port = await closedPort();
  const store = await runCli(['serve'], { ...PORTS, ORCHEO_AUTH_DATABASE_URL: `postgres://orcheo:pw-not-logged@127.0.0.1:${port}/orcheo` }, { home: home.dir });
  assert.equal(store.code, 3, store.stdout + store.stderr);
  assert.match(store.stderr, /cannot reach or migrate the token store/);
  assert.match(store.stdout + store.stderr, /"code":"store.unavailable"/, 'the fatal log line carries the code');
  assert.doesNotMatch(store.stdout + store.stderr, /pw-not-logged/);
});

test('serve: SIGTERM drains and exits 0; check-config problems exit 2', async (t) => {
  const home = tempHome();
  t.after(() => home.remove());
  const store = await childStore();
  t.after(() => store.remove());
  const s = await startServer(store.env, { home: home.dir });
  assert.equal(await s.stop(), 0, s.logs());
  assert.match(s.logs(), /"msg":"stopped"/);
  const bad = await runCli(['check-config'], { ORCHEO_AUTH_MODE: 'sometimes' }, { home: home.dir });
  assert.equal(bad.code, 2, bad.stderr);
});
