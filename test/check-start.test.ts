/**
 * Start with the store unreachable (fail-closed start, health), and guessing during a later store
 * outage: the service reaches Postgres only through a TCP proxy the test cuts and restores.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadPackageDefinition } from '../src/grpc/descriptors';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus } from './helpers/grpc-client';
import { createTestSchema, pgReachable, PG_SKIP_REASON, type TestSchema } from './helpers/pg';
import { startTcpProxy, viaProxy, type TcpProxy } from './helpers/tcp-proxy';
import { pollUntil } from './helpers/wait';

const UNKNOWN = 'q7bX3kP0vN9mZ2rT5wY8aC1dF4gH6jL0sU3eI7oR2nB'; // service-token shaped, in no store

/** grpc.health.v1 Check for the Authorization service, as Envoy's health checker asks it. */
function healthStatus(port: number, service = 'envoy.service.auth.v3.Authorization'): Promise<string> {
  const pkg = loadPackageDefinition();
  const Ctor = grpc.makeGenericClientConstructor(pkg['grpc.health.v1.Health'] as grpc.ServiceDefinition, 'grpc.health.v1.Health');
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as Record<string, Function> & grpc.Client;
  return new Promise<string>((resolve, reject) => {
    c['Check']!.call(c, { service }, { deadline: Date.now() + 3000 }, (err: Error | null, res: { status: string | number }) => {
      c.close();
      if (err) reject(err);
      else resolve(String(res.status));
    });
  });
}

async function readyz(port: number): Promise<number> {
  return (await fetch(`http://127.0.0.1:${port}/readyz`)).status;
}

const until = async (what: string, cond: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> => void (await pollUntil(what, cond, { timeoutMs, everyMs: 50 }));

describe('store unreachable at start, then up, then down again', async () => {
  const reachable = await pgReachable();
  const skip = !reachable && PG_SKIP_REASON;
  let schema: TestSchema;
  let proxy: TcpProxy;
  let t: TestApp | undefined;

  before(async () => {
    if (!reachable) return;
    schema = await createTestSchema('start');
    // Migrate once directly, so the proxied start below needs no DDL (ORCHEO_AUTH_AUTO_MIGRATE=false).
    const m = await startTestApp({ ORCHEO_AUTH_MODE: 'required' }, 'pg', schema);
    await m.stop();
    proxy = await startTcpProxy({ port: Number(new URL(schema.url).port || 5432), host: new URL(schema.url).hostname });
    proxy.cut();
    t = await startTestApp(
      { ORCHEO_AUTH_AUTO_MIGRATE: 'false', ORCHEO_AUTH_DATABASE_URL: viaProxy(schema.url, proxy), ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '600' },
      'pg',
      schema,
    );
  });

  after(async () => {
    await t?.stop().catch(() => undefined);
    await proxy?.close();
    await schema?.drop();
  });

  test('before the index loads: an unset mode enforces, health NOT_SERVING, /readyz 503', { skip }, async () => {
    const anon = await t!.client.check({ path: '/api/workflows', sourceIp: '10.9.0.1' });
    assert.equal(deniedStatus(anon), 401, 'no anonymous allow while the store is unknown');
    assert.equal(deniedBody(anon).code, 'auth.missing_token');
    assert.equal(t!.app.mode(), 'required');
    assert.equal(await healthStatus(t!.app.grpcPort), 'NOT_SERVING');
    assert.equal(await readyz(t!.app.httpPort), 503);
    const line = t!.logs.find((l) => l.includes('"msg":"orcheo-authz serving"'));
    assert.ok(line, 'start line logged');
    assert.match(line, /rate limits on: ip 3 failures\/600s/);
    assert.match(line, /mode required: token store not loaded yet/);
    assert.match(line, /grpc 127\.0\.0\.1:\d+, http 127\.0\.0\.1:\d+ \(health NOT_SERVING until the token store loads\)/);
  });

  test('the store comes up: the index loads, health SERVING, the unset mode is optional (no credential source)', { skip }, async () => {
    proxy.restore();
    await until('health SERVING', async () => (await healthStatus(t!.app.grpcPort)) === 'SERVING');
    assert.equal(t!.app.mode(), 'optional');
    assert.equal(await readyz(t!.app.httpPort), 200);
    const anon = await t!.client.check({ path: '/api/workflows', sourceIp: '10.9.0.2' });
    assert.ok(anon.ok_response, 'mode behaves as configured once loaded');
  });

  test('a later store outage keeps health SERVING; unknown tokens 503 and count for their IP until 429', { skip }, async (tc) => {
    proxy.cut();
    // Each probe from its own IP, so waiting for staleness counts nothing against the IP under test.
    let probe = 0;
    await until('index stale (unknown tokens 503)', async () => {
      probe += 1;
      const r = await t!.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${UNKNOWN}` }, sourceIp: `10.8.${probe >> 8}.${probe & 255}` });
      return deniedBody(r).code === 'auth.backend_unavailable';
    });
    tc.diagnostic(`${probe} probes until the index was stale`);
    assert.equal(await healthStatus(t!.app.grpcPort), 'SERVING', 'a store outage after load does not make it unready');
    assert.equal(await readyz(t!.app.httpPort), 200);
    const codes: string[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await t!.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${UNKNOWN}x${i}` }, sourceIp: '10.7.0.1' });
      codes.push(deniedBody(r).code);
    }
    assert.deepEqual(codes, ['auth.backend_unavailable', 'auth.backend_unavailable', 'auth.backend_unavailable', 'auth.rate_limited.ip']);
    proxy.restore();
  });
});
