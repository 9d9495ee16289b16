import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { clusterKeyPrefix } from '../../src/ratelimit/redis';
import type { LimitQuery } from '../../src/ratelimit/types';
import { reap } from './reaper';
import { freePort, pollUntil } from './wait';

export { freePort };

/** redis-server from PATH (a Homebrew or /usr/local install is found too); undefined when absent. */
export const REDIS_SERVER_BIN: string | undefined = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'redis-server')).find((f) => existsSync(f));

/** Under CI_REQUIRE_BACKENDS=1 a missing backend fails the run instead of skipping tests (README, "Tests"). */
function skipOrFail(reason: string): string {
  if (process.env.CI_REQUIRE_BACKENDS) throw new Error(`CI_REQUIRE_BACKENDS is set but ${reason}`);
  return reason;
}

/** Skip reason when the shared Redis at 127.0.0.1:6379 does not answer (undefined when it does). */
export async function sharedRedisSkipReason(): Promise<string | undefined> {
  return (await redisReachable()) ? undefined : skipOrFail(`Redis is not reachable at ${SHARED_REDIS_URL}`);
}

/** Skip reason when no redis-server binary is on PATH (undefined when there is one). */
export function redisServerSkipReason(): string | undefined {
  return REDIS_SERVER_BIN ? undefined : skipOrFail('redis-server is not on PATH (Debian package redis-server)');
}

export const SHARED_REDIS_URL = 'redis://127.0.0.1:6379';

/**
 * For tests about windows shared through Redis, not about its latency: a command slower than the
 * production 100 ms timeout on a loaded machine would send a replica to its in-process fallback and
 * split the windows (fault-redis tests the timeout itself). Pass as startTestApp's `intervals`.
 */
export const SHARED_WINDOW_INTERVALS = { redisCommandTimeoutMs: 2000 } as const;

/** A failed attempt counted against `key` with `limit`. */
export const failure = (key: string, limit: number): LimitQuery => ({ key, limit, failed: true });

/** True when something answers PING at host:port within timeoutMs. Never throws, leaves no socket open. */
export function redisReachable(port = 6379, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let settled = false;
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('error', () => finish(false));
    socket.connect(port, host, () => socket.write('PING\r\n'));
    socket.on('data', (buf) => finish(buf.toString().startsWith('+PONG')));
  });
}

/** A unique key prefix per test, so parallel tests and leftovers never share windows. */
export function testPrefix(name: string): string {
  return `orcheo-authz-test:${name}:${randomBytes(4).toString('hex')}:`;
}

/** Deletes every key whose name starts with `{stem}` (the hash-tagged prefix the limiter writes). */
export async function deleteKeysMatching(url: string, pattern: string): Promise<number> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    let deleted = 0;
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length > 0) deleted += await client.del(...keys);
    } while (cursor !== '0');
    return deleted;
  } finally {
    client.disconnect();
  }
}

/**
 * Deletes the windows a limiter with `keyPrefix` wrote. The limiter hash-tags the prefix
 * (`{stem}:`), so a plain `${keyPrefix}*` pattern would match none of them.
 */
export function deleteLimiterKeys(url: string, keyPrefix: string): Promise<number> {
  return deleteKeysMatching(url, `${clusterKeyPrefix(keyPrefix).replace(/[{}]/g, '\\$&')}*`);
}

/** A cluster node's bus port is its port + 10 000. */
const CLUSTER_BUS_OFFSET = 10_000;

/** A dedicated, throw-away redis-server (no persistence) that a test may kill and start again on the same port. */
export class RedisServerProcess {
  private child: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'orcheo-authz-redis-'));

  private constructor(
    readonly port: number,
    readonly cluster: boolean,
  ) {}

  /** A binary is on PATH; prefer redisServerSkipReason() in a test, which fails under CI_REQUIRE_BACKENDS. */
  static available(): boolean {
    return REDIS_SERVER_BIN !== undefined;
  }

  /** cluster: a one-node Redis Cluster owning every slot, which enforces CROSSSLOT like a real cluster. */
  static async start(opts: { cluster?: boolean } = {}): Promise<RedisServerProcess> {
    const server = await RedisServerProcess.launch(opts.cluster === true);
    if (server.cluster) await server.assignAllSlots();
    return server;
  }

  /** Started on a fresh port; a port another process took between the check and the bind gets a second and third try. */
  private static async launch(cluster: boolean): Promise<RedisServerProcess> {
    for (let attempt = 1; ; attempt++) {
      const server = new RedisServerProcess(await freePort(cluster ? CLUSTER_BUS_OFFSET : undefined), cluster);
      try {
        await server.restart();
        return server;
      } catch (err) {
        await server.destroy();
        if (attempt >= 3) throw err;
      }
    }
  }

  /** n real cluster nodes on loopback ports, slots split between them, joined by CLUSTER MEET. */
  static async startCluster(n: number): Promise<{ nodes: RedisServerProcess[]; url: string; destroy(): Promise<void> }> {
    const nodes: RedisServerProcess[] = [];
    for (let i = 0; i < n; i++) nodes.push(await RedisServerProcess.launch(true));
    const per = Math.ceil(16384 / n);
    for (const [i, node] of nodes.entries()) {
      const c = node.nodeClient();
      try {
        await c.call('CLUSTER', 'ADDSLOTSRANGE', String(i * per), String(Math.min(16383, (i + 1) * per - 1)));
        for (const other of nodes) if (other !== node) await c.call('CLUSTER', 'MEET', '127.0.0.1', String(other.port));
      } finally {
        c.disconnect();
      }
    }
    const deadline = Date.now() + 15000;
    for (const node of nodes) {
      const c = node.nodeClient();
      try {
        while (!String(await c.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
          if (Date.now() > deadline) throw new Error('cluster did not reach state ok');
          await new Promise((r) => setTimeout(r, 50));
        }
      } finally {
        c.disconnect();
      }
    }
    return {
      nodes,
      url: `redis+cluster://${nodes.map((x) => `127.0.0.1:${x.port}`).join(',')}`,
      destroy: async () => {
        for (const x of nodes) await x.destroy();
      },
    };
  }

  get url(): string {
    return this.cluster ? `redis+cluster://127.0.0.1:${this.port}` : `redis://127.0.0.1:${this.port}`;
  }

  /** A plain client to the node, for assertions. The caller disconnects it. */
  nodeClient(): Redis {
    return new Redis({ host: '127.0.0.1', port: this.port, maxRetriesPerRequest: 1 });
  }

  private async assignAllSlots(): Promise<void> {
    const client = this.nodeClient();
    try {
      await client.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      const deadline = Date.now() + 5000;
      while (!String(await client.call('CLUSTER', 'INFO')).includes('cluster_state:ok')) {
        if (Date.now() > deadline) throw new Error('cluster did not reach state ok');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      client.disconnect();
    }
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async restart(): Promise<void> {
    if (this.child) throw new Error('redis-server already running');
    if (!REDIS_SERVER_BIN) throw new Error('redis-server is not on PATH');
    const child = spawn(
      REDIS_SERVER_BIN,
      [
        '--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--save', '', '--appendonly', 'no',
        '--daemonize', 'no', '--loglevel', 'warning',
        ...(this.cluster ? ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${this.port}.conf`, '--cluster-announce-ip', '127.0.0.1'] : []),
      ],
      { stdio: 'ignore' },
    );
    this.child = reap(child);
    child.once('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    const deadline = Date.now() + 5000;
    while (!(await redisReachable(this.port, '127.0.0.1', 200))) {
      if (Date.now() > deadline || this.child !== child) {
        await this.stop();
        throw new Error(`redis-server did not start on port ${this.port}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  /** SIGSTOP: the socket stays open but nothing answers, like a hung server or a half-open connection. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** SIGKILL and delete the working directory; the instance cannot be restarted afterwards. */
  async destroy(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** SIGKILL, like a crashed or partitioned server; resolves once the process has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}

/** Resolves once limiter.backend() reports 'redis' (startup connects asynchronously); rejects after timeoutMs. */
export async function untilBackend(limiter: { backend: () => string }, want: string, timeoutMs = 5000): Promise<void> {
  await pollUntil(`backend() ${want} (is ${limiter.backend()})`, () => limiter.backend() === want, { timeoutMs, everyMs: 10 });
}
