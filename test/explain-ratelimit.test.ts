/**
 * Explain reads the limiter's windows and never writes them: the Redis keys are read directly before
 * and after (members, scores, expiry), and the in-process windows through the next real Check.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Redis from 'ioredis';
import { clusterKeyPrefix } from '../src/ratelimit/redis';
import { startTestApp } from './helpers/app';
import { deniedBody } from './helpers/grpc-client';
import { explainCall, policyFile, serviceToken } from './helpers/explain';
import { deleteKeysMatching, redisReachable, SHARED_REDIS_URL, SHARED_WINDOW_INTERVALS, testPrefix } from './helpers/redis-server';

/** Every key under the prefix with its members, scores and remaining lifetime. */
async function snapshot(redis: Redis, stem: string): Promise<Map<string, { members: string[]; pttl: number }>> {
  const out = new Map<string, { members: string[]; pttl: number }>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${stem}*`, 'COUNT', 500);
    cursor = next;
    for (const k of keys) out.set(k, { members: await redis.zrange(k, 0, -1, 'WITHSCORES'), pttl: await redis.pttl(k) });
  }
  while (cursor !== '0');
  return out;
}

describe('explain and the rate limiter', async () => {
  const reachable = await redisReachable();
  if (!reachable && process.env.CI_REQUIRE_BACKENDS) throw new Error('CI_REQUIRE_BACKENDS is set but Redis is unreachable');

  test('Redis: windows are read, never written; explain then check agree', { skip: !reachable && 'Redis not reachable at 127.0.0.1:6379' }, async () => {
    const prefix = testPrefix('explain-rl');
    const stem = clusterKeyPrefix(prefix);
    const policy = policyFile();
    const redis = new Redis(SHARED_REDIS_URL);
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_POLICY_FILE: policy.path, ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_RATE_LIMIT_IDENTITY: '3', ORCHEO_AUTH_REDIS_URL: SHARED_REDIS_URL, ORCHEO_AUTH_RATE_LIMIT_KEY_PREFIX: prefix }, 'auto', undefined, { intervals: SHARED_WINDOW_INTERVALS });
    try {
      const reader = await serviceToken(t.app, 'reader', ['workflows:read'], ['ws-a']);
      const admin = await serviceToken(t.app, 'admin', ['admin:tokens:read'], []);
      const bad = { authorization: 'Bearer not-a-token' };
      for (let i = 0; i < 2; i++) assert.equal(deniedBody(await t.client.check({ sourceIp: '203.0.113.7', headers: bad })).code, 'auth.invalid_token');
      assert.equal(deniedBody(await t.client.check({ path: '/api/credentials/c', sourceIp: '198.51.100.1', headers: { authorization: `Bearer ${reader}` } })).code, 'auth.missing_scope');

      const before = await snapshot(redis, stem);
      assert.deepEqual([...before.keys()].sort(), [`${stem}id:st:reader`, `${stem}ip:203.0.113.7`], 'the real checks wrote their windows');
      const explained = [
        { method: 'GET', path: '/api/workflows', ip: '203.0.113.7', headers: bad },
        { method: 'GET', path: '/api/credentials/c', ip: '203.0.113.7', token: reader },
        { method: 'GET', path: '/api/workflows', ip: '192.0.2.99', headers: bad },
        { method: 'GET', path: '/api/credentials/c', ip: '192.0.2.99', token: reader },
        { method: 'GET', path: '/api/beta/x', ip: '192.0.2.98', headers: bad },
      ];
      for (let round = 0; round < 3; round++) for (const body of explained) assert.equal((await explainCall(t.app, body, admin)).status, 200);
      const after = await snapshot(redis, stem);
      assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort(), 'no window created for the explained IPs');
      for (const [k, v] of before) {
        assert.deepEqual(after.get(k)!.members, v.members, `${k}: same failures, same scores`);
        assert.ok(after.get(k)!.pttl <= v.pttl, `${k}: expiry not pushed back`);
      }

      // Two failures of three: explain says 401 with 2/3; the check agrees and fills the window.
      const e1 = (await explainCall(t.app, explained[0], admin)).body;
      assert.deepEqual([e1.decision.code, e1.rate_limits.windows[0].count, e1.rate_limits.windows[0].limit, e1.rate_limits.windows[0].blocked], ['auth.invalid_token', 2, 3, false], JSON.stringify(e1.rate_limits));
      assert.equal(deniedBody(await t.client.check({ sourceIp: '203.0.113.7', headers: bad })).code, e1.decision.code);
      const e2 = (await explainCall(t.app, explained[0], admin)).body;
      assert.equal(e2.decision.code, 'auth.rate_limited.ip');
      assert.equal(e2.decision.status, 429);
      const w = e2.rate_limits.windows[0];
      assert.deepEqual([w.window, w.subject, w.count, w.limit, w.blocked], ['ip', '203.0.113.7', 3, 3, true]);
      assert.ok(w.retry_after_seconds >= 1 && w.retry_after_seconds <= 60);
      assert.match(e2.would_change[0], /^window for 203\.0\.113\.7 full \(3\/3 failures\) until \d\d:\d\d:\d\d UTC$/);
      assert.equal(deniedBody(await t.client.check({ sourceIp: '203.0.113.7', headers: bad })).code, 'auth.rate_limited.ip');
    } finally {
      await t.stop();
      policy.remove();
      await deleteKeysMatching(SHARED_REDIS_URL, `${stem}*`);
      redis.disconnect();
    }
  });

  test('in-process windows: explaining a failure any number of times leaves the next check its full window', async () => {
    const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IP: '1' }, 'auto');
    try {
      const admin = await serviceToken(t.app, 'admin', ['admin:tokens:read'], []);
      const body = { method: 'GET', path: '/api/workflows', ip: '203.0.113.8', token: 'not-a-token' };
      for (let i = 0; i < 5; i++) assert.equal((await explainCall(t.app, body, admin)).body.decision.code, 'auth.invalid_token');
      const check = () => t.client.check({ sourceIp: '203.0.113.8', headers: { authorization: 'Bearer not-a-token' } });
      assert.equal(deniedBody(await check()).code, 'auth.invalid_token', 'the first real failure is still a 401');
      assert.equal((await explainCall(t.app, body, admin)).body.decision.code, 'auth.rate_limited.ip');
      assert.equal(deniedBody(await check()).code, 'auth.rate_limited.ip');
    } finally {
      await t.stop();
    }
  });
});
