/**
 * Redis down end to end: the service's rate-limit windows live in a dedicated redis-server that the
 * test kills mid-run. The module-level behaviour is in ratelimit-resilient.test.ts; this checks what
 * a client of the Check service sees.
 */
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { startTestApp } from './helpers/app';
import { deniedBody, deniedHeaders, deniedStatus, okHeaders, type CheckResult } from './helpers/grpc-client';
import { RedisServerProcess, redisServerSkipReason } from './helpers/redis-server';
import { median, pollUntil } from './helpers/wait';

const BOOT = 'bootstrap-secret-for-tests-0123456789';
const LIMIT = 5;

test('Redis killed under load: Checks keep answering fast, failures keep counting in-process, Redis used again once back', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
  const redis = await RedisServerProcess.start();
  t.after(() => redis.destroy());
  const app = await startTestApp(
    {
      ORCHEO_AUTH_MODE: 'required',
      ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT,
      ORCHEO_AUTH_REDIS_URL: redis.url,
      ORCHEO_AUTH_RATE_LIMIT_IP: String(LIMIT),
      ORCHEO_AUTH_RATE_LIMIT_INTERVAL: '60',
    },
    'auto',
  );
  t.after(() => app.stop());
  const node = redis.nodeClient();
  node.on('error', () => undefined); // the assertion client reconnects quietly while Redis is down
  t.after(() => node.disconnect());

  const backend = async (): Promise<string | undefined> => (await app.app.metrics.limiterBackend.get()).values.find((v) => v.value === 1)?.labels.backend as string | undefined;
  const waitBackend = async (want: string, timeoutMs: number): Promise<number> => Math.round((await pollUntil(`rate-limit backend ${want}`, async () => (await backend()) === want, { timeoutMs, everyMs: 20 })).ms);
  const latencies: number[] = [];
  const check = async (ip: string, token: string): Promise<CheckResult> => {
    const t0 = performance.now();
    const r = await app.client.check({ sourceIp: ip, headers: { authorization: `Bearer ${token}` }, path: '/api/profile' });
    latencies.push(performance.now() - t0);
    return r;
  };
  const failuresInRedis = async (ip: string): Promise<number> => {
    const keys = await node.keys(`*ip:${ip}*`);
    let n = 0;
    for (const k of keys) n += await node.zcard(k);
    return n;
  };

  // Redis up: failures land in Redis.
  await waitBackend('redis', 5000);
  for (let i = 0; i < 2; i++) assert.equal(deniedBody(await check('192.0.2.1', 'wrong-token')).code, 'auth.invalid_token');
  assert.equal(await failuresInRedis('192.0.2.1'), 2, 'two failures counted in Redis');

  // Redis killed.
  await redis.stop();
  latencies.length = 0;
  const first = await check('192.0.2.9', BOOT);
  assert.equal(okHeaders(first)['x-orcheo-subject'], 'bootstrap', 'allowed while Redis is gone');
  for (let i = 0; i < LIMIT; i++) {
    const r = await check('192.0.2.2', 'wrong-token');
    assert.equal(deniedBody(r).code, 'auth.invalid_token', `failure ${i + 1} of ${LIMIT} is a 401`);
  }
  const limited = await check('192.0.2.2', 'wrong-token');
  assert.equal(deniedStatus(limited), 429, 'the in-process window keeps counting');
  assert.equal(deniedBody(limited).code, 'auth.rate_limited.ip');
  assert.equal(deniedBody(limited).message, 'Too many authentication attempts from IP 192.0.2.2');
  const retryAfter = Number(deniedHeaders(limited)['retry-after']);
  assert.ok(retryAfter >= 55 && retryAfter <= 60, `retry-after ${retryAfter}`);
  assert.equal(limited.status.code, 8);
  // Other clients are not affected; valid credentials still pass.
  for (let i = 0; i < 20; i++) {
    assert.equal(okHeaders(await check(`198.51.100.${i}`, BOOT))['x-orcheo-subject'], 'bootstrap');
    assert.equal(deniedBody(await check(`203.0.113.${i}`, 'wrong-token')).code, 'auth.invalid_token');
  }
  assert.equal(await backend(), 'fallback');
  // That Checks stop paying the command timeout once the outage is known is the 'fallback' backend
  // above (and ratelimit-resilient); the times are reported, not asserted.
  const sorted = [...latencies].sort((a, b) => a - b);
  t.diagnostic(`Checks with Redis dead: first ${latencies[0]!.toFixed(1)} ms, median ${median(latencies).toFixed(1)} ms, max ${sorted.at(-1)!.toFixed(1)} ms over ${sorted.length}`);

  // Redis back on the same port (empty: it had no persistence): shared windows again.
  await redis.restart();
  const took = await waitBackend('redis', 8000);
  t.diagnostic(`back on Redis ${took} ms after restart`);
  const again = await check('192.0.2.2', 'wrong-token');
  assert.equal(deniedBody(again).code, 'auth.invalid_token', 'outage-only counts are not carried over into Redis');
  assert.equal(await failuresInRedis('192.0.2.2'), 1, 'new failures are counted in Redis again');
});
