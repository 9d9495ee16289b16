import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { createRateLimiter, LimiterUnavailableError, type RateLimiter } from '../src/ratelimit';
import { RedisServerProcess, redisServerSkipReason, failure as fail } from './helpers/redis-server';
import { freePort, pollUntil } from './helpers/wait';


/** A pino logger whose JSON lines land in an array, so tests can assert what was logged (and what was not). */
function captureLogger() {
  const lines: { level: number; msg: string; [k: string]: unknown }[] = [];
  const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines, at: (level: number) => lines.filter((l) => l.level === level) };
}

const waitFor = async (what: string, cond: () => boolean, timeoutMs = 8000): Promise<number> => (await pollUntil(what, cond, { timeoutMs, everyMs: 20 })).ms;

/** Awaits p and reports how long it took (a diagnostic, not an assertion: timing varies by machine). */
async function timed<T>(t: TestContext, label: string, p: Promise<T>): Promise<T> {
  const start = performance.now();
  const v = await p;
  t.diagnostic(`${label}: ${(performance.now() - start).toFixed(1)} ms`);
  return v;
}

async function startServer(t: TestContext): Promise<RedisServerProcess> {
  const server = await RedisServerProcess.start();
  t.after(() => server.destroy());
  return server;
}

function track(t: TestContext, l: RateLimiter): RateLimiter {
  t.after(() => l.close());
  return l;
}

test('Redis killed mid-run: answers from memory, logs once, returns to Redis by itself', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
  const server = await startServer(t);
  const log = captureLogger();
  const changes: string[] = [];
  const l = track(t, createRateLimiter({
    redisUrl: server.url, intervalSeconds: 60, failClosed: false, logger: log.logger, onBackendChange: (b) => changes.push(b),
  }));
  assert.deepEqual((await l.evaluate([fail('ip:192.0.2.1', 2)])).map((v) => v.blocked), [false]);
  assert.equal(l.backend(), 'redis');

  await server.stop();
  const [v1] = await timed(t, 'evaluate right after SIGKILL', l.evaluate([fail('ip:192.0.2.1', 2)]));
  assert.equal(v1!.blocked, false);
  assert.equal(l.backend(), 'fallback');
  // the fallback still limits: its own window counts from the outage on
  const [v2] = await timed(t, 'evaluate during outage', l.evaluate([fail('ip:192.0.2.1', 2)]));
  assert.equal(v2!.blocked, false);
  const [v3] = await timed(t, 'evaluate during outage', l.evaluate([fail('ip:192.0.2.1', 2)]));
  assert.deepEqual(v3, { blocked: true, retryAfterSeconds: 60 });
  await sleep(600); // several reconnect attempts fail meanwhile
  await l.evaluate([fail('ip:192.0.2.1', 2)]);
  assert.equal(log.at(40).length, 1, 'one warning per outage');
  assert.match(log.at(40)[0]!.msg, /Redis unreachable, using in-process windows/);

  await server.restart();
  const ms = await waitFor("backend() === 'redis'", () => l.backend() === 'redis');
  t.diagnostic(`back to redis ${ms.toFixed(0)} ms after restart, without any evaluate() call`);
  assert.deepEqual(changes, ['redis', 'fallback', 'redis']);
  assert.match(log.at(30).at(-1)!.msg, /Redis reachable again/);
  // the restarted server is empty, so the window starts over (and the script is reloaded after NOSCRIPT)
  assert.deepEqual((await l.evaluate([fail('ip:192.0.2.1', 2)])).map((v) => v.blocked), [false]);
  assert.equal(l.backend(), 'redis');
});

test('hung Redis (SIGSTOP): bounded by the command timeout, then recovers after SIGCONT', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
  const server = await startServer(t);
  t.after(() => server.resume()); // a stopped process cannot be killed cleanly by the other after()
  const log = captureLogger();
  const l = track(t, createRateLimiter({ redisUrl: server.url, intervalSeconds: 60, failClosed: false, logger: log.logger, commandTimeoutMs: 100 }));
  await l.evaluate([fail('ip:192.0.2.2', 5)]);
  assert.equal(l.backend(), 'redis');

  server.pause();
  const [v] = await timed(t, 'evaluate while Redis hangs (100 ms command timeout)', l.evaluate([fail('ip:192.0.2.2', 5)]));
  assert.equal(v!.blocked, false);
  assert.equal(l.backend(), 'fallback');
  // once the outage is known, Checks go straight to memory instead of each waiting for the timeout
  const burst = await timed(t, '10 concurrent evaluates while Redis hangs', Promise.all(Array.from({ length: 10 }, () => l.evaluate([fail('ip:192.0.2.3', 50)]))));
  assert.deepEqual(burst.map(([b]) => b!.blocked), Array(10).fill(false));
  assert.equal(log.at(40).length, 1);

  await sleep(1500); // long enough for ioredis' socketTimeout to tear the silent connection down
  assert.equal(log.at(40).length, 1, 'one warning per outage');
  assert.equal(l.backend(), 'fallback');

  server.resume();
  const ms = await waitFor('recovery after SIGCONT', () => l.backend() === 'redis', 10_000);
  t.diagnostic(`recovered ${ms.toFixed(0)} ms after SIGCONT, without any evaluate() call`);
  // ioredis 5.11 may tear down the new connection once more (stale socketTimeout timer, redis/ioredis#2147);
  // whatever happens, the limiter must settle on Redis by itself.
  await sleep(1200);
  await waitFor('settled on redis', () => l.backend() === 'redis', 10_000);
  assert.deepEqual((await l.evaluate([fail('ip:192.0.2.2', 5)])).map((v) => v.blocked), [false]);
});

test('failClosed: rejects with LimiterUnavailableError while Redis is down, recovers afterwards', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
  const server = await startServer(t);
  const log = captureLogger();
  const l = track(t, createRateLimiter({ redisUrl: server.url, intervalSeconds: 60, failClosed: true, logger: log.logger }));
  assert.deepEqual(await l.evaluate([fail('ip:192.0.2.5', 3)]), [{ blocked: false, retryAfterSeconds: 0 }]);
  await server.stop();
  const err = await timed(t, 'rejecting evaluate', l.evaluate([fail('ip:192.0.2.5', 3)]).then(() => undefined, (e: unknown) => e));
  assert.ok(err instanceof LimiterUnavailableError, `got ${String(err)}`);
  assert.equal(err.code, 'limiter_unavailable');
  await assert.rejects(l.evaluate([fail('ip:192.0.2.5', 3)]), LimiterUnavailableError);
  assert.match(log.at(40)[0]!.msg, /failing closed/);
  await server.restart();
  await waitFor('recovery', () => l.backend() === 'redis');
  assert.deepEqual(await l.evaluate([fail('ip:192.0.2.5', 3)]), [{ blocked: false, retryAfterSeconds: 0 }]);
});

test('Redis unreachable from the start: falls back at once, never logs the password, closes cleanly', async (t) => {
  const port = await freePort(); // nothing listens here
  const log = captureLogger();
  const l = createRateLimiter({ redisUrl: `redis://:hunter2-secret@127.0.0.1:${port}/0`, intervalSeconds: 60, failClosed: false, logger: log.logger });
  const verdicts = await timed(t, 'first evaluate with Redis down', Promise.all(Array.from({ length: 20 }, () => l.evaluate([fail('ip:192.0.2.6', 3)]))));
  assert.deepEqual(verdicts.map(([v]) => v!.blocked), [false, false, false, ...Array(17).fill(true)]);
  assert.equal(l.backend(), 'fallback');
  await sleep(300);
  await l.close();
  assert.equal(log.at(40).length, 1);
  const all = JSON.stringify(log.lines);
  assert.ok(!all.includes('hunter2'), all);
  assert.match(all, /redis:\/\/:\*\*\*@127\.0\.0\.1/);
});

test('failClosed right after start: the first Checks wait for the connection instead of answering 503', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
  const server = await startServer(t);
  const l = track(t, createRateLimiter({ redisUrl: server.url, intervalSeconds: 60, failClosed: true, logger: pino({ level: 'silent' }) }));
  assert.equal(l.backend(), 'fallback');
  const verdicts = await timed(t, '5 evaluates issued before the first connection', Promise.all(Array.from({ length: 5 }, () => l.evaluate([fail('ip:192.0.2.8', 3)]))));
  assert.deepEqual(verdicts.map(([v]) => v!.blocked), [false, false, false, true, true]);
  assert.equal(l.backend(), 'redis');
});
