import { setTimeout as sleep } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
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

/** Where the OS picks ports for `listen(0)` (Linux default when /proc is not readable). */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    // not Linux
  }
  return [32768, 60999];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback port nothing listens on now, for a child that binds it by number (a redis-server, a
 * Prometheus) or for "nothing answers here". It is taken below the OS's ephemeral range, so no
 * server another test starts on port 0 can be handed it meanwhile (the classic free-port race, and
 * its inverse: a "closed" port that a parallel test's server now answers on). A server of our own
 * binds port 0 and reports the port instead.
 */
export async function freePort(offset?: number): Promise<number> {
  const [lo] = ephemeralRange();
  const base = Math.max(1024, lo - 12_000);
  // With `offset`, port + offset must be free too and also below the ephemeral range (a Redis
  // Cluster node binds its bus on port + 10 000: in the ephemeral range, an outgoing connection of
  // a parallel test could hold it, and the node exited at once; CI hit that once).
  const top = offset ? lo - offset : lo;
  for (let i = 0; i < 50; i++) {
    const port = base + Math.floor(Math.random() * (top - base));
    if ((await bindable(port)) && (!offset || (await bindable(port + offset)))) return port;
  }
  throw new Error(`no bindable loopback port in ${base}..${top - 1}${offset ? ` with port + ${offset} free` : ''}`);
}

/**
 * `p`, or a failure naming `what` once `ms` have passed: a watchdog for "this must not wait for X",
 * where X (a slow provider, a held packet) takes far longer than `ms`. The timer is cleared either way.
 */
export async function watchdog<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const fired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: still waiting after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, fired]);
  } finally {
    clearTimeout(timer);
  }
}
