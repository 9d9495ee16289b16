import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { insertToken } from '../src/store/tokens';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, deniedHeaders, deniedStatus, okHeaders } from './helpers/grpc-client';
import { pgReachable } from './helpers/pg';
import { deleteLimiterKeys, SHARED_REDIS_URL, SHARED_WINDOW_INTERVALS, sharedRedisSkipReason, testPrefix } from './helpers/redis-server';


const SHARED = { intervals: SHARED_WINDOW_INTERVALS };

async function withApps(n: number, env: Record<string, string>, fn: (apps: TestApp[]) => Promise<void>): Promise<void> {
  const first = await startTestApp(env, 'auto', undefined, SHARED);
  const apps = [first];
  try {
    for (let i = 1; i < n; i++) apps.push(await startTestApp(env, first.schema ? 'pg' : 'embedded', first.schema, SHARED));
    await fn(apps);
  } finally {
    for (const a of apps.slice(1)) await a.stop();
    await first.stop();
  }
}

describe('rate limiting through Check', async () => {
  const REDIS_SKIP = await sharedRedisSkipReason();
  await pgReachable();

  test('IP limit (in-process): the 4th failure from an IP is a 429 with retry-after, other IPs unaffected', async () => {
    await withApps(1, { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '60' }, async ([t]) => {
      for (let i = 0; i < 3; i++) assert.equal(deniedStatus(await t!.client.check({ sourceIp: '203.0.113.7', headers: { authorization: 'Bearer bad' } })), 401);
      const r = await t!.client.check({ sourceIp: '203.0.113.7', headers: { authorization: 'Bearer bad' } });
      assert.equal(deniedStatus(r), 429);
      assert.equal(r.status.code, 8);
      assert.deepEqual(deniedBody(r), { message: 'Too many authentication attempts from IP 203.0.113.7', code: 'auth.rate_limited.ip', request_id: r.dynamic_metadata?.fields['decision_id']?.stringValue });
      const retry = Number(deniedHeaders(r)['retry-after']);
      assert.ok(retry >= 1 && retry <= 60, `retry-after ${retry}`);
      assert.equal(deniedStatus(await t!.client.check({ sourceIp: '203.0.113.8', headers: { authorization: 'Bearer bad' } })), 401);
    });
  });

  test('identity limit counts 403s of a known token; XFF ignored unless hops are trusted', async () => {
    await withApps(1, { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '2' }, async ([t]) => {
      const { record, secret } = await insertToken(t!.app.db, { id: 'limited', scopes: [], workspaces: [] });
      t!.app.index.apply(record);
      const auth = { authorization: `Bearer ${secret}` };
      for (let i = 0; i < 2; i++) assert.equal(deniedStatus(await t!.client.check({ method: 'POST', path: '/api/workflows', headers: auth, sourceIp: `198.51.100.${i}` })), 403);
      const r = await t!.client.check({ path: '/api/other', headers: auth });
      assert.equal(deniedBody(r).code, 'auth.rate_limited.identity', 'even an otherwise allowed request');
    });
    await withApps(1, { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IP: '1', ORCHEO_AUTH_XFF_TRUSTED_HOPS: '1' }, async ([t]) => {
      const bad = { authorization: 'Bearer bad' };
      assert.equal(deniedStatus(await t!.client.check({ sourceIp: '10.0.0.1', headers: { ...bad, 'x-forwarded-for': 'forged, 192.0.2.50' } })), 401);
      const r = await t!.client.check({ sourceIp: '10.0.0.1', headers: { ...bad, 'x-forwarded-for': '192.0.2.50' } });
      assert.equal(deniedBody(r).message, 'Too many authentication attempts from IP 192.0.2.50');
      assert.equal(deniedStatus(await t!.client.check({ sourceIp: '10.0.0.1', headers: { ...bad, 'x-forwarded-for': '192.0.2.51' } })), 401, 'proxy address not blamed');
    });
  });

  test('two instances share windows through Redis', { skip: REDIS_SKIP }, async () => {
    const prefix = testPrefix('check-shared');
    try {
      const env = { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IP: '4', ORCHEO_AUTH_REDIS_URL: SHARED_REDIS_URL, ORCHEO_AUTH_RATE_LIMIT_KEY_PREFIX: prefix };
      await withApps(2, env, async ([a, b]) => {
        for (let i = 0; i < 4; i++) assert.equal(deniedStatus(await (i % 2 ? a! : b!).client.check({ sourceIp: '203.0.113.9', headers: { authorization: 'Bearer bad' } })), 401);
        assert.equal(deniedBody(await a!.client.check({ sourceIp: '203.0.113.9' })).code, 'auth.rate_limited.ip');
        assert.equal(deniedBody(await b!.client.check({ sourceIp: '203.0.113.9' })).code, 'auth.rate_limited.ip');
        assert.equal(deniedBody(await b!.client.check({ sourceIp: '203.0.113.10' })).code, 'auth.missing_token');
      });
    } finally {
      // Proves the pattern below matches the windows the limiter writes.
      assert.ok((await deleteLimiterKeys(SHARED_REDIS_URL, prefix)) > 0, 'the shared windows were in Redis');
    }
  });

  test('limits off: allowed requests pass and nothing is counted', { skip: REDIS_SKIP }, async () => {
    // Redis configured but no limit set: a window written there would be "counted".
    const prefix = testPrefix('check-off');
    try {
      await withApps(1, { ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: 'b'.repeat(24), ORCHEO_AUTH_REDIS_URL: SHARED_REDIS_URL, ORCHEO_AUTH_RATE_LIMIT_KEY_PREFIX: prefix }, async ([t]) => {
        for (let i = 0; i < 20; i++) assert.equal(deniedStatus(await t!.client.check({ headers: { authorization: 'Bearer bad' } })), 401);
        assert.equal(okHeaders(await t!.client.check({ headers: { authorization: `Bearer ${'b'.repeat(24)}` } }))['x-orcheo-subject'], 'bootstrap');
        assert.ok(t!.logs.some((l) => l.includes('rate limits off')), 'the start line says limits are off');
      });
    } finally {
      assert.equal(await deleteLimiterKeys(SHARED_REDIS_URL, prefix), 0, 'no window was written');
    }
  });
});
