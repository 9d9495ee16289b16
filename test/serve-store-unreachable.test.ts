/**
 * `serve` against a Postgres nobody listens on: it stops with an error that names the variable and the
 * host, never the password (operator issue, "readiness tells the truth").
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { closedPort, runCli, tempHome } from './helpers/spawn';

test('serve with an unreachable Postgres names ORCHEO_AUTH_DATABASE_URL and the host, not the password', async () => {
  const home = tempHome();
  try {
    const port = await closedPort();
    const r = await runCli(['serve'], {
      ORCHEO_AUTH_DATABASE_URL: `postgres://orcheo:hunter2-secret@127.0.0.1:${port}/orcheo`,
      ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0',
      ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0',
    }, { home: home.dir });
    const out = r.stdout + r.stderr;
    assert.notEqual(r.code, 0, out);
    assert.match(out, new RegExp(`ORCHEO_AUTH_DATABASE_URL=postgres://orcheo:\\*\\*\\*@127\\.0\\.0\\.1:${port}/orcheo`));
    assert.doesNotMatch(out, /hunter2/);
  } finally {
    home.remove();
  }
});
