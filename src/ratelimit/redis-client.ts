import type { Cluster, ClusterOptions, default as Redis, RedisOptions } from 'ioredis';
import { isClusterUrl, parseClusterUrl, redactRedisUrl } from './redis-url';

/**
 * ioredis loads (~60-80 ms of CPU) only when a Redis URL is configured: a replica on in-process
 * windows, the CLI and most tests never need it.
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const ioredis = (): typeof import('ioredis') => require('ioredis') as typeof import('ioredis');

export type RedisLike = Redis | Cluster;

export interface RedisClientOptions {
  commandTimeoutMs: number;
}

/** Reconnect forever; the cap keeps a long outage from turning into minutes between attempts. */
function backoff(times: number): number {
  return Math.min(50 * 2 ** Math.min(times, 6), 2000);
}

function baseOptions(o: RedisClientOptions): RedisOptions {
  return {
    // Measured by npm run bench: with many Checks in flight, batching their EVALSHAs into one write
    // raised limits-on throughput from ~0.3 to ~0.57 of baseline; at one in flight it costs a tick.
    enableAutoPipelining: true,
    // A command must fail at once while disconnected; queueing it would stall the Check it belongs to.
    enableOfflineQueue: false,
    commandTimeout: o.commandTimeoutMs,
    maxRetriesPerRequest: 1,
    connectTimeout: Math.max(1000, o.commandTimeoutMs * 10),
    // A half-open connection (peer gone without FIN/RST) keeps looking ready while every command times out;
    // destroying a socket that stays silent with commands pending makes ioredis reconnect within a second
    // instead of waiting minutes for TCP keepalive.
    socketTimeout: Math.max(1000, o.commandTimeoutMs * 10),
    retryStrategy: backoff,
    // After a failover the old primary answers READONLY: reconnect so the client finds the new primary.
    reconnectOnError: (err) => (err.message.startsWith('READONLY') ? 2 : false),
  };
}

/** redis://, rediss:// → one client; redis+cluster://, rediss+cluster:// → a Cluster client. */
export function createRedisClient(url: string, o: RedisClientOptions): RedisLike {
  if (isClusterUrl(url)) {
    const { nodes, username, password, tls } = parseClusterUrl(url);
    const { retryStrategy: _r, enableOfflineQueue, ...nodeOptions } = baseOptions(o);
    const clusterOptions: ClusterOptions = {
      enableAutoPipelining: true,
      enableOfflineQueue,
      clusterRetryStrategy: backoff,
      maxRedirections: 4,
      slotsRefreshTimeout: Math.max(1000, o.commandTimeoutMs * 10),
      redisOptions: { ...nodeOptions, username, password, ...(tls ? { tls: {} } : {}) },
    };
    return new (ioredis().Cluster)(nodes, clusterOptions);
  }
  if (!/^rediss?:\/\//i.test(url)) throw new Error(`unsupported Redis URL ${redactRedisUrl(url)}`);
  return new (ioredis().default)(url, baseOptions(o));
}

/** Closes without waiting on a dead server: QUIT only when connected, otherwise drop the socket. */
export async function closeRedisClient(client: RedisLike): Promise<void> {
  if (client.status === 'end') return;
  if (client.status === 'ready') {
    try {
      await client.quit();
      return;
    } catch {
      // fall through: the connection broke while quitting
    }
  }
  client.disconnect();
}
