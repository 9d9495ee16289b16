/**
 * Micro-benchmark (not a test): evaluate() throughput of the in-process limiter vs the Redis limiter, same run.
 * Run: npx tsc -p . && node dist/test/bench/ratelimit-micro.js [redisUrl]
 * Each op is one Check's call: an IP query and an identity query, ~1 in 4 recording a failure.
 */
import { performance } from 'node:perf_hooks';
import pino from 'pino';
import { createRateLimiter, type RateLimiter } from '../../src/ratelimit';
import type { LimitQuery } from '../../src/ratelimit/types';
import { clusterKeyPrefix } from '../../src/ratelimit/redis';
import { deleteKeysMatching, redisReachable, testPrefix, untilBackend } from '../helpers/redis-server';

const url = process.argv[2] ?? 'redis://127.0.0.1:6379';

function queries(i: number): LimitQuery[] {
  return [
    { key: `ip:10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, limit: 10, failed: i % 4 === 0 },
    { key: `id:token-${i % 1000}`, limit: 5, failed: i % 4 === 0 },
  ];
}

async function run(label: string, l: RateLimiter, ops: number, concurrency: number): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ops) await l.evaluate(queries(next++));
  };
  for (let i = 0; i < Math.min(ops, 2000); i++) await l.evaluate(queries(1_000_000 + i)); // warm-up
  const start = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const ms = performance.now() - start;
  const perOp = (ms * 1000 * concurrency) / ops;
  console.log(`${label.padEnd(34)} ${String(Math.round((ops / ms) * 1000)).padStart(9)} ops/s   ${perOp.toFixed(1).padStart(7)} µs/op latency`);
}

async function main(): Promise<void> {
  const logger = pino({ level: 'warn' });
  const memory = createRateLimiter({ intervalSeconds: 60, failClosed: false, logger });
  await run('memory, sequential', memory, 500_000, 1);
  await memory.close();

  if (!(await redisReachable(Number(new URL(url).port || 6379), new URL(url).hostname))) {
    console.log(`redis: not reachable at ${url}, skipped`);
    return;
  }
  const keyPrefix = testPrefix('bench');
  const redis = createRateLimiter({ redisUrl: url, keyPrefix, intervalSeconds: 60, failClosed: true, logger });
  try {
    await untilBackend(redis, 'redis');
    await run('redis, sequential (1 in flight)', redis, 20_000, 1);
    await run('redis, 16 in flight', redis, 100_000, 16);
    await run('redis, 64 in flight', redis, 100_000, 64);
  } finally {
    await redis.close();
    await deleteKeysMatching(url, `${clusterKeyPrefix(keyPrefix).replace(/[{}]/g, '\\$&')}*`);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
