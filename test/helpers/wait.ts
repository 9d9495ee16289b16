import { setTimeout as sleep } from 'node:timers/promises';
import { createServer } from 'node:net';

export { sleep };

/**
 * Re-evaluates `cond` every `everyMs` (0: every event-loop turn) until it is truthy, and resolves
 * to that value and the time it took. The bound is a watchdog, not a measurement: it is the
 * point at which the test gives up, so it should be generous; report the time as a diagnostic.
 */
export async function pollUntil<T>(what: string, cond: () => T | Promise<T>, opts: { timeoutMs?: number; everyMs?: number } = {}): Promise<{ value: NonNullable<T>; ms: number }> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const start = performance.now();
  for (;;) {
    const value = await cond();
    if (value) return { value: value as NonNullable<T>, ms: performance.now() - start };
    if (performance.now() - start > timeoutMs) throw new Error(`${what}: not within ${timeoutMs} ms`);
    if (opts.everyMs) await sleep(opts.everyMs);
    else await new Promise((r) => setImmediate(r));
  }
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/**
 * A loopback port nothing listens on (bound, then released). Only for "nothing answers here":
 * a server a test starts binds port 0 itself and reports the port, since another process may take a
 * released port before the child binds it.
 */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}
