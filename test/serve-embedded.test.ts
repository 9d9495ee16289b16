import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { AuthzClient, deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';

const MAIN = join(__dirname, '..', 'src', 'main.js');
const BOOT = 'bootstrap-secret-for-tests-0123456789';

async function waitForReady(url: string, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} not ready after ${ms} ms`);
}

test('`serve` on the embedded store with only Node: bootstrap allowed, no token 401, SIGTERM drains and exits 0', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'authz-embedded-'));
  const grpcPort = 20000 + Math.floor(Math.random() * 10000);
  const httpPort = grpcPort + 1;
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    env: {
      PATH: process.env.PATH,
      HOME: dir,
      ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT,
      ORCHEO_AUTH_GRPC_ADDR: `127.0.0.1:${grpcPort}`,
      ORCHEO_AUTH_HTTP_ADDR: `127.0.0.1:${httpPort}`,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const client = new AuthzClient(grpcPort);
  try {
    await waitForReady(`http://127.0.0.1:${httpPort}/readyz`, 60000);
    const ok = await client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${BOOT}` } });
    assert.equal(okHeaders(ok)['x-orcheo-subject'], 'bootstrap');
    const denied = await client.check({ path: '/api/workflows' });
    assert.equal(deniedStatus(denied), 401);
    assert.deepEqual(deniedBody(denied), { message: 'Missing bearer token', code: 'auth.missing_token', request_id: denied.dynamic_metadata?.fields['decision_id']?.stringValue });
    assert.match(stderr, /embedded token store/);
    assert.match(stderr, /authz-db/, 'stored under ~/.orcheo/authz-db by default');
    assert.ok(!stderr.includes(BOOT), 'the bootstrap token never reaches the logs');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr.slice(-2000));
    assert.match(stderr, /stopped/);
  } finally {
    client.close();
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
