import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import Redis from 'ioredis';
import pino from 'pino';
import { createRateLimiter, type RateLimiter } from '../src/ratelimit';
import { clusterKeyPrefix } from '../src/ratelimit/redis';
import type { LimitQuery } from '../src/ratelimit/types';
import { pollUntil } from './helpers/wait';
import { deleteLimiterKeys, SHARED_REDIS_URL, sharedRedisSkipReason, testPrefix, untilBackend, failure as fail } from './helpers/redis-server';

const silent = pino({ level: 'silent' });

/** A limiter on the shared Redis with its own prefix; the returned cleanup closes it and deletes its keys. */
async function setup(t: TestContext, name: string, intervalSeconds: number, count = 1) {
  const skip = await sharedRedisSkipReason();
  if (skip) return void t.skip(skip);
  const keyPrefix = testPrefix(name);
  const limiters: RateLimiter[] = [];
  for (let i = 0; i < count; i++) {
    limiters.push(createRateLimiter({ redisUrl: SHARED_REDIS_URL, keyPrefix, intervalSeconds, failClosed: true, logger: silent }));
  }
  const inspector = new Redis(SHARED_REDIS_URL);
  const tag = clusterKeyPrefix(keyPrefix);
  t.after(async () => {
    await Promise.all(limiters.map((l) => l.close()));
    inspector.disconnect();
    await deleteLimiterKeys(SHARED_REDIS_URL, keyPrefix);
  });
  assert.equal(limiters[0]!.backend(), 'fallback'); // not connected yet
  // failClosed would answer 503 if a call beat the first connection by more than the command timeout
  for (const l of limiters) await untilBackend(l, 'redis');
  return { limiters, l: limiters[0]!, inspector, tag };
}

const blocked = async (l: RateLimiter, qs: LimitQuery[]) => (await l.evaluate(qs)).map((v) => v.blocked);

test('per-IP and per-identity limits, keys hash-tagged, prefixed and expiring', async (t) => {
  const s = await setup(t, 'limits', 60);
  if (!s) return;
  const { l, inspector, tag } = s;
  for (let i = 0; i < 3; i++) assert.deepEqual(await blocked(l, [fail('ip:203.0.113.7', 3), fail('id:ci', 5)]), [false, false]);
  assert.equal(l.backend(), 'redis');
  assert.deepEqual(await blocked(l, [fail('ip:203.0.113.7', 3), fail('id:ci', 5)]), [true, false]);
  // identity reaches its limit through other IPs
  assert.deepEqual(await blocked(l, [fail('ip:203.0.113.8', 3), fail('id:ci', 5)]), [false, false]);
  assert.deepEqual(await blocked(l, [fail('ip:203.0.113.9', 3), fail('id:ci', 5)]), [false, false]);
  assert.deepEqual(await blocked(l, [fail('ip:203.0.113.10', 3), fail('id:ci', 5)]), [false, true]);

  assert.match(tag, /^\{orcheo-authz-test:limits:[0-9a-f]{8}\}:$/);
  const keys = (await inspector.keys(`${tag.replace(/[{}]/g, '\\$&')}*`)).sort();
  // no key for .10: its only call was blocked (on the identity), so it recorded nothing
  assert.deepEqual(keys, [`${tag}id:ci`, `${tag}ip:203.0.113.7`, `${tag}ip:203.0.113.8`, `${tag}ip:203.0.113.9`]);
  assert.equal(await inspector.zcard(`${tag}ip:203.0.113.7`), 3);
  assert.equal(await inspector.zcard(`${tag}id:ci`), 5);
  const pttl = await inspector.pttl(`${tag}id:ci`);
  assert.ok(pttl > 55_000 && pttl <= 60_000, `PTTL ${pttl}`);
});

test('a blocked answer records nothing on any key', async (t) => {
  const s = await setup(t, 'norecord', 60);
  if (!s) return;
  const { l, inspector, tag } = s;
  await l.evaluate([fail('ip:192.0.2.1', 1)]);
  const before = await inspector.zrange(`${tag}ip:192.0.2.1`, 0, -1, 'WITHSCORES');
  for (let i = 0; i < 5; i++) assert.deepEqual(await blocked(l, [fail('ip:192.0.2.1', 1), fail('id:bob', 3)]), [true, false]);
  assert.deepEqual(await inspector.zrange(`${tag}ip:192.0.2.1`, 0, -1, 'WITHSCORES'), before);
  assert.equal(await inspector.exists(`${tag}id:bob`), 0);
  // checks without a failure read but never write
  await l.evaluate([{ key: 'id:carol', limit: 3, failed: false }]);
  assert.equal(await inspector.exists(`${tag}id:carol`), 0);
});

test('retryAfter counts from the oldest failure; the window slides (2 s interval)', async (t) => {
  const s = await setup(t, 'slide', 2);
  if (!s) return;
  const { l } = s;
  const INTERVAL = 2000;
  // Redis stamps entries with its own clock (the same machine's): each call is bracketed by local
  // instants, and what the window must say follows from those, not from how long a sleep took.
  const timed = async (q: LimitQuery) => {
    const t0 = Date.now();
    const [v] = await l.evaluate([q]);
    return { v: v!, t0, t1: Date.now() };
  };
  const first = await timed(fail('ip:192.0.2.2', 2));
  assert.equal(first.v.blocked, false);
  await sleep(1000);
  const second = await timed(fail('ip:192.0.2.2', 2));
  const third = await timed(fail('ip:192.0.2.2', 2));
  t.diagnostic(`third call ${third.t1 - first.t0} ms after the first`);
  assert.ok(third.t1 - first.t0 < INTERVAL, 'the machine stalled past the interval: nothing to check');
  assert.equal(second.v.blocked, false);
  assert.equal(third.v.blocked, true);
  // Seconds left until the oldest entry leaves, rounded up: from the oldest, where "the interval" would say 2.
  const lo = Math.ceil((first.t0 + INTERVAL - third.t1) / 1000);
  const hi = Math.ceil((first.t1 + INTERVAL - third.t0) / 1000);
  assert.ok(third.v.retryAfterSeconds! >= lo && third.v.retryAfterSeconds! <= hi && third.v.retryAfterSeconds! < 2, `retryAfter ${third.v.retryAfterSeconds}, expected ${lo}..${hi}`);

  // The oldest left the window, the second is still in it: one more failure fits, then blocked.
  await sleep(Math.max(0, first.t1 + INTERVAL + 100 - Date.now()));
  const fourth = await timed(fail('ip:192.0.2.2', 2));
  const fifth = await timed(fail('ip:192.0.2.2', 2));
  assert.ok(fifth.t1 - second.t0 < INTERVAL, 'the machine stalled past the interval: nothing to check');
  assert.equal(fourth.v.blocked, false);
  assert.equal(fifth.v.blocked, true);
  // Everything left the window.
  await sleep(Math.max(0, fourth.t1 + INTERVAL + 100 - Date.now()));
  assert.equal((await timed(fail('ip:192.0.2.2', 2))).v.blocked, false);
});

test('two limiter instances (two connections) share one window', async (t) => {
  const s = await setup(t, 'shared', 60, 2);
  if (!s) return;
  const [a, b] = s.limiters as [RateLimiter, RateLimiter];
  assert.deepEqual(await blocked(a, [fail('ip:198.51.100.4', 4)]), [false]);
  assert.deepEqual(await blocked(b, [fail('ip:198.51.100.4', 4)]), [false]);
  // concurrent failures from both replicas: exactly the remaining 2 are admitted, the script is atomic
  const burst = await Promise.all([a, b, a, b, a, b].map((l) => l.evaluate([fail('ip:198.51.100.4', 4)])));
  assert.equal(burst.filter(([v]) => !v!.blocked).length, 2);
  assert.equal(await s.inspector.zcard(`${s.tag}ip:198.51.100.4`), 4);
  assert.deepEqual(await blocked(b, [{ key: 'ip:198.51.100.4', limit: 4, failed: false }]), [true]);
  assert.deepEqual(await blocked(a, [{ key: 'ip:198.51.100.4', limit: 4, failed: false }]), [true]);
});

test('one EVALSHA per evaluate, none when every limit is disabled', async (t) => {
  const s = await setup(t, 'roundtrip', 60);
  if (!s) return;
  const { l, inspector } = s;
  await l.evaluate([fail('ip:192.0.2.3', 100)]); // loads the script
  const name = `rt-${Math.random()}`;
  // Count this connection's commands only: the shared Redis may serve other tests at the same time.
  const counting = new Redis(SHARED_REDIS_URL);
  t.after(() => counting.disconnect());
  const monitor = await counting.monitor();
  const seen: string[] = [];
  const markers: string[] = [];
  monitor.on('monitor', (_time: string, args: string[]) => {
    if (args[0]?.toLowerCase() === 'echo' && args[1]?.startsWith(name)) markers.push(args[1]);
    else if (args.some((a) => a.includes(s.tag))) seen.push(args[0]!.toLowerCase());
  });
  // MONITOR starts asynchronously: a marker seen through it means everything after is seen too, and
  // an end marker that every command below precedes on the server bounds the capture.
  const mark = async (m: string) => {
    await pollUntil(`MONITOR sees ${m}`, async () => (await inspector.echo(`${name}:${m}`), markers.includes(`${name}:${m}`)), { everyMs: 10 });
  };
  await mark('start');
  for (let i = 0; i < 5; i++) await l.evaluate([fail('ip:192.0.2.3', 100), fail(`id:${name}`, 100)]);
  await l.evaluate([{ key: 'ip:192.0.2.3', limit: 0, failed: true }]);
  await l.evaluate([]);
  await mark('end');
  monitor.disconnect();
  // MONITOR lists a script's inner commands too; the client-issued ones are the evalsha lines.
  assert.equal(seen.filter((c) => c === 'evalsha').length, 5);
  assert.equal(seen.filter((c) => c === 'eval' || c === 'multi').length, 0);
});
