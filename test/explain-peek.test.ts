/**
 * The limiter's read-only `peek` (explain's view of the windows): the same judgement as `evaluate`,
 * no write, on every backend; and explain's report when the limiter fails closed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Redis from 'ioredis';
import pino from 'pino';
import { createRateLimiter } from '../src/ratelimit';
import { MemoryLimiter } from '../src/ratelimit/memory';
import { clusterKeyPrefix } from '../src/ratelimit/redis';
import { LimiterUnavailableError, type LimitQuery } from '../src/ratelimit/types';
import { startTestApp } from './helpers/app';
import { explainCall, serviceToken } from './helpers/explain';
import { deleteKeysMatching, freePort, redisReachable, SHARED_REDIS_URL, testPrefix, untilBackend } from './helpers/redis-server';

const silent = pino({ level: 'silent' });
const q = (key: string, limit: number, failed = false): LimitQuery => ({ key, limit, failed });

test('memory: peek counts the live window, judges like evaluate, and writes nothing', () => {
  let now = 1_000_000;
  const l = new MemoryLimiter({ intervalMs: 60_000, now: () => now });
  l.evaluateSync([q('ip:a', 2, true)]);
  now += 10_000;
  l.evaluateSync([q('ip:a', 2, true)]);
  now += 10_000;
  assert.deepEqual(l.peekSync([q('ip:a', 2), q('ip:unknown', 2), q('ip:a', 0)]), [
    { count: 2, limit: 2, blocked: true, retryAfterSeconds: 40 },
    { count: 0, limit: 2, blocked: false, retryAfterSeconds: 0 },
    { count: 0, limit: 0, blocked: false, retryAfterSeconds: 0 },
  ]);
  assert.equal(l.size, 1, 'peeking an unknown key created no window');
  const { count: _c, limit: _l, ...verdict } = l.peekSync([q('ip:a', 2, true)])[0]!;
  void _c;
  void _l;
  assert.deepEqual(verdict, l.evaluateSync([q('ip:a', 2)])[0], 'the verdict evaluate gives');
  now += 40_001; // the first failure left the window
  assert.deepEqual(l.peekSync([q('ip:a', 2)]), [{ count: 1, limit: 2, blocked: false, retryAfterSeconds: 0 }]);
  assert.deepEqual(l.evaluateSync([q('ip:a', 2, true)]), [{ blocked: false, retryAfterSeconds: 0 }], 'peek left room for exactly one more failure');
  assert.equal(l.evaluateSync([q('ip:a', 2, true)])[0]!.blocked, true);
});

test('Redis: peek reads the same windows evaluate writes, and writes none', async (tc) => {
  if (!(await redisReachable())) return tc.skip('Redis not reachable at 127.0.0.1:6379');
  const keyPrefix = testPrefix('peek');
  const tag = clusterKeyPrefix(keyPrefix);
  const l = createRateLimiter({ redisUrl: SHARED_REDIS_URL, keyPrefix, intervalSeconds: 60, failClosed: true, logger: silent });
  const r = new Redis(SHARED_REDIS_URL);
  try {
    await untilBackend(l, 'redis');
    for (let i = 0; i < 3; i++) await l.evaluate([q('ip:a', 3, true), q('id:x', 5, true)]);
    const before = await r.zrange(`${tag}ip:a`, 0, -1, 'WITHSCORES');
    const [ip, id, fresh] = await l.peek([q('ip:a', 3, true), q('id:x', 5, true), q('ip:fresh', 3, true)]);
    assert.deepEqual([ip!.count, ip!.limit, ip!.blocked], [3, 3, true]);
    assert.ok(ip!.retryAfterSeconds >= 59 && ip!.retryAfterSeconds <= 60, String(ip!.retryAfterSeconds));
    assert.deepEqual(id, { count: 3, limit: 5, blocked: false, retryAfterSeconds: 0 });
    assert.deepEqual(fresh, { count: 0, limit: 3, blocked: false, retryAfterSeconds: 0 });
    assert.deepEqual(await r.zrange(`${tag}ip:a`, 0, -1, 'WITHSCORES'), before, 'no member added or removed');
    assert.equal(await r.exists(`${tag}ip:fresh`), 0, 'no key created');
    assert.equal((await l.evaluate([q('ip:a', 3)]))[0]!.blocked, true, 'evaluate agrees');
  } finally {
    await l.close();
    r.disconnect();
    await deleteKeysMatching(SHARED_REDIS_URL, `${tag}*`);
  }
});

test('Redis down: peek fails closed like evaluate, or answers from the in-process windows', async () => {
  const url = `redis://127.0.0.1:${await freePort()}`;
  const closed = createRateLimiter({ redisUrl: url, intervalSeconds: 60, failClosed: true, logger: silent, commandTimeoutMs: 50 });
  const open = createRateLimiter({ redisUrl: url, intervalSeconds: 60, failClosed: false, logger: silent, commandTimeoutMs: 50 });
  try {
    await assert.rejects(closed.peek([q('ip:a', 3)]), LimiterUnavailableError);
    await open.evaluate([q('ip:a', 3, true)]);
    assert.deepEqual(await open.peek([q('ip:a', 3)]), [{ count: 1, limit: 3, blocked: false, retryAfterSeconds: 0 }]);
  } finally {
    await closed.close();
    await open.close();
  }
});

test('explain says when the limiter fails closed, and the check agrees', async () => {
  const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_RATE_LIMIT_IP: '3', ORCHEO_AUTH_REDIS_URL: `redis://127.0.0.1:${await freePort()}`, ORCHEO_AUTH_RATE_LIMIT_FAIL_CLOSED: 'true' }, 'auto');
  try {
    const token = await serviceToken(t.app, 'reader', ['workflows:read'], []);
    // The admin API authenticates through the same pipeline, so it meets the closed limiter too;
    // the explanation is asked of the pipeline directly.
    const r = await explainCall(t.app, { method: 'GET', path: '/api/workflows', token }, token);
    assert.equal(r.status, 503, 'the admin API is behind the same pipeline');
    assert.equal(r.body.code, 'auth.backend_unavailable');
    const explained = await t.app.explain({ method: 'GET', path: '/api/workflows', headers: new Map([['authorization', `Bearer ${token}`]]), sourceAddress: '203.0.113.7' });
    assert.equal(explained.rate_limits.available, false);
    assert.deepEqual([explained.decision.status, explained.decision.code], [503, 'auth.backend_unavailable']);
    assert.match(explained.would_change[0]!, /rate limiter is unreachable and fails closed/);
    const checked = await t.client.check({ path: '/api/workflows', sourceIp: '203.0.113.7', headers: { authorization: `Bearer ${token}` } });
    assert.ok(checked.denied_response?.body.includes('auth.backend_unavailable'));
  } finally {
    await t.stop();
  }
});
