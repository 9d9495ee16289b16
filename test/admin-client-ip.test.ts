import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedStatus } from './helpers/grpc-client';

// The admin API's per-IP limit keys on the TCP peer, unless the peer is in
// ORCHEO_AUTH_TRUSTED_PROXIES; a caller's own x-forwarded-for never chooses the key.
const LIMITS = { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'client-ip-bootstrap-0123456789', ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '60' };

async function appFor(t: TestContext, env: Record<string, string>): Promise<TestApp> {
  const a = await startTestApp({ ...LIMITS, ...env }, 'auto');
  t.after(() => a.stop());
  return a;
}

/** A bad admin call (wrong token) claiming to come from `xff`; its status. */
async function badAdminCall(a: TestApp, xff: string): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${a.app.httpPort}/api/admin/service-tokens`, { headers: { authorization: 'Bearer wrong-token-0123456789abcdef', 'x-forwarded-for': xff } });
  await res.text();
  return res.status;
}

/** A bad Check as Envoy sends it for a client at `clientIp` (one trusted hop). */
const badCheckFor = (a: TestApp, clientIp: string) => a.client.check({ sourceIp: '10.0.0.1', headers: { authorization: 'Bearer wrong-token-0123456789abcdef', 'x-forwarded-for': clientIp } });

test('no trusted proxies: direct calls with a fresh forged x-forwarded-for each are limited by the TCP peer', async (t) => {
  const a = await appFor(t, { ORCHEO_AUTH_XFF_TRUSTED_HOPS: '1' });
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push(await badAdminCall(a, `198.51.100.${i + 1}`));
  assert.deepEqual(codes, [401, 401, 401, 429, 429]);
});

test("no trusted proxies: forged x-forwarded-for naming a victim does not get the victim's Checks 429", async (t) => {
  const a = await appFor(t, { ORCHEO_AUTH_XFF_TRUSTED_HOPS: '1' });
  const victim = '192.0.2.77';
  for (let i = 0; i < 5; i++) await badAdminCall(a, victim);
  const r = await badCheckFor(a, victim);
  assert.equal(deniedStatus(r), 401, JSON.stringify(deniedBody(r)));
});

test('ORCHEO_AUTH_TRUSTED_PROXIES=127.0.0.1/32: the entry the proxy appended is the client address', async (t) => {
  const a = await appFor(t, { ORCHEO_AUTH_TRUSTED_PROXIES: '127.0.0.1/32', ORCHEO_AUTH_XFF_TRUSTED_HOPS: '0' });
  const codes: number[] = [];
  for (let i = 0; i < 5; i++) codes.push(await badAdminCall(a, 'forged-by-client, 198.51.100.5'));
  assert.deepEqual(codes, [401, 401, 401, 429, 429], 'one client behind the proxy is limited');
  assert.equal(await badAdminCall(a, '198.51.100.6'), 401, 'another client behind the same proxy is not');
  // the same limiter key as a Check for that client: the admin calls were counted against 198.51.100.5
  // (hops 0: the gRPC side keys on the Check's source address, as Envoy reports the client)
  const r = await a.client.check({ sourceIp: '198.51.100.5', headers: { authorization: 'Bearer wrong-token-0123456789abcdef' } });
  assert.equal(deniedStatus(r), 429);
});
