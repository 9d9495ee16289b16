import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import pino from 'pino';
import { MemoryLimiter } from '../src/ratelimit/memory';
import { createRateLimiter } from '../src/ratelimit';
import type { LimitQuery } from '../src/ratelimit/types';

const silent = pino({ level: 'silent' });

function clock(start = 1_700_000_000_000): { now: () => number; advance: (ms: number) => void } {
  let t = start;
  return { now: () => t, advance: (ms) => (t += ms) };
}

const ipFail = (ip: string, limit: number): LimitQuery => ({ key: `ip:${ip}`, limit, failed: true });

test('factory without redisUrl gives the in-process limiter', async () => {
  const l = createRateLimiter({ intervalSeconds: 60, failClosed: false, logger: silent });
  assert.equal(l.backend(), 'memory');
  assert.deepEqual(await l.evaluate([]), []);
  await l.close();
  assert.throws(() => createRateLimiter({ intervalSeconds: 0, failClosed: false, logger: silent }), RangeError);
});

test('per-IP limit: the request after `limit` failures is blocked, other IPs are not', async () => {
  const c = clock();
  const l = new MemoryLimiter({ intervalMs: 60_000, now: c.now });
  for (let i = 0; i < 3; i++) {
    assert.deepEqual(await l.evaluate([ipFail('203.0.113.7', 3)]), [{ blocked: false, retryAfterSeconds: 0 }]);
    c.advance(1000);
  }
  const [v] = await l.evaluate([ipFail('203.0.113.7', 3)]);
  assert.equal(v!.blocked, true);
  assert.deepEqual(await l.evaluate([ipFail('198.51.100.1', 3)]), [{ blocked: false, retryAfterSeconds: 0 }]);
});

test('identity limit blocks while the IP is fine; verdicts keep query order', async () => {
  const c = clock();
  const l = new MemoryLimiter({ intervalMs: 60_000, now: c.now });
  const q = (ip: string): LimitQuery[] => [ipFail(ip, 10), { key: 'id:my-ci-token', limit: 2, failed: true }];
  await l.evaluate(q('192.0.2.1'));
  await l.evaluate(q('192.0.2.2'));
  const v = await l.evaluate(q('192.0.2.3'));
  assert.deepEqual(v.map((x) => x.blocked), [false, true]);
});

test('a blocked answer records nothing, on any key of the call', async () => {
  const c = clock();
  const l = new MemoryLimiter({ intervalMs: 10_000, now: c.now });
  await l.evaluate([ipFail('192.0.2.9', 1)]); // ip now at its limit
  for (let i = 0; i < 5; i++) {
    const v = await l.evaluate([ipFail('192.0.2.9', 1), { key: 'id:alice', limit: 1, failed: true }]);
    assert.deepEqual(v.map((x) => x.blocked), [true, false]);
  }
  // id:alice was never recorded, so alone it still has its one failure to spend
  assert.equal((await l.evaluate([{ key: 'id:alice', limit: 1, failed: true }]))[0]!.blocked, false);
  assert.equal((await l.evaluate([{ key: 'id:alice', limit: 1, failed: false }]))[0]!.blocked, true);
  // blocked IP: the window still ends 10 s after its only failure, not 10 s after the last blocked attempt
  c.advance(10_000);
  assert.equal((await l.evaluate([ipFail('192.0.2.9', 1)]))[0]!.blocked, false);
});

test('retryAfter counts from the oldest failure, rounded up to whole seconds', async () => {
  const c = clock();
  const l = new MemoryLimiter({ intervalMs: 60_000, now: c.now });
  await l.evaluate([ipFail('192.0.2.5', 2)]);
  c.advance(20_000);
  await l.evaluate([ipFail('192.0.2.5', 2)]);
  c.advance(5_500);
  // oldest at t0, now t0+25.5 s → 34.5 s left → 35
  assert.deepEqual(await l.evaluate([ipFail('192.0.2.5', 2)]), [{ blocked: true, retryAfterSeconds: 35 }]);
  c.advance(34_499);
  assert.deepEqual(await l.evaluate([ipFail('192.0.2.5', 2)]), [{ blocked: true, retryAfterSeconds: 1 }]);
  c.advance(1);
  // the oldest failure left the window; one slot is free again, and the second failure still counts
  assert.deepEqual(await l.evaluate([ipFail('192.0.2.5', 2)]), [{ blocked: false, retryAfterSeconds: 0 }]);
  assert.deepEqual(await l.evaluate([ipFail('192.0.2.5', 2)]), [{ blocked: true, retryAfterSeconds: 20 }]);
});

test('successes (failed=false) are checked but never counted; limit 0 disables', async () => {
  const c = clock();
  const l = new MemoryLimiter({ intervalMs: 60_000, now: c.now });
  for (let i = 0; i < 20; i++) await l.evaluate([{ key: 'ip:192.0.2.77', limit: 1, failed: false }]);
  assert.equal((await l.evaluate([ipFail('192.0.2.77', 1)]))[0]!.blocked, false);
  for (let i = 0; i < 20; i++) assert.equal((await l.evaluate([ipFail('192.0.2.78', 0)]))[0]!.blocked, false);
  assert.equal(l.size, 1);
});

test('memory stays bounded under random keys (LRU eviction)', async () => {
  const l = new MemoryLimiter({ intervalMs: 60_000, maxKeys: 1000 });
  for (let i = 0; i < 5000; i++) await l.evaluate([ipFail(`10.0.${i >> 8}.${i & 255}`, 5)]);
  assert.equal(l.size, 1000);
});

/** Reference model: the contract stated naively (full log per key, linear scans). */
function model(intervalMs: number) {
  const logs = new Map<string, number[]>();
  return (now: number, qs: LimitQuery[]) => {
    const live = (k: string) => (logs.get(k) ?? []).filter((t) => t > now - intervalMs);
    const verdicts = qs.map((q) => {
      if (q.limit <= 0) return { blocked: false, retryAfterSeconds: 0 };
      const l = live(q.key);
      if (l.length < q.limit) return { blocked: false, retryAfterSeconds: 0 };
      return { blocked: true, retryAfterSeconds: Math.max(1, Math.ceil((l[l.length - q.limit]! + intervalMs - now) / 1000)) };
    });
    if (!verdicts.some((v) => v.blocked)) for (const q of qs) if (q.failed && q.limit > 0) logs.set(q.key, [...live(q.key), now]);
    return verdicts;
  };
}

test('property: matches the reference model on random call sequences', () => {
  const query = fc.record({ key: fc.constantFrom('ip:a', 'ip:b', 'id:x'), limit: fc.integer({ min: 0, max: 4 }), failed: fc.boolean() });
  const step = fc.record({ advance: fc.integer({ min: 0, max: 4000 }), queries: fc.array(query, { maxLength: 3 }) });
  fc.assert(
    fc.property(fc.array(step, { maxLength: 60 }), (steps) => {
      const c = clock();
      const l = new MemoryLimiter({ intervalMs: 5000, now: c.now, maxKeys: 16 });
      const ref = model(5000);
      for (const s of steps) {
        c.advance(s.advance);
        assert.deepEqual(l.evaluateSync(s.queries), ref(c.now(), s.queries));
      }
    }),
    { numRuns: 300 },
  );
});
