import { redactUrl as redactRedisUrl } from '../util/redact-url';
import Redis, { Cluster, type ClusterNode, type ClusterOptions, type RedisOptions } from 'ioredis';

export type RedisLike = Redis | Cluster;

export interface RedisClientOptions {
  commandTimeoutMs: number;
}

/** Password of a Redis URL replaced, so the URL can appear in logs and errors. */
export { redactRedisUrl };

export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url);
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

/** Parses `redis+cluster://[user:pass@]host:port,host:port[/…]` (and `rediss+cluster://` for TLS). */
export function parseClusterUrl(url: string): { nodes: ClusterNode[]; username?: string; password?: string; tls: boolean } {
  const m = /^(rediss?)\+cluster:\/\/(?:(.*)@)?([^/?#@]+)/i.exec(url);
  if (!m) throw new Error(`invalid Redis cluster URL ${redactRedisUrl(url)}`);
  const tls = m[1]!.toLowerCase() === 'rediss';
  let username: string | undefined;
  let password: string | undefined;
  if (m[2] !== undefined) {
    const colon = m[2].indexOf(':');
    const user = decodeURIComponent(colon >= 0 ? m[2].slice(0, colon) : '');
    const pass = colon >= 0 ? decodeURIComponent(m[2].slice(colon + 1)) : decodeURIComponent(m[2]);
    if (user) username = user;
    if (pass) password = pass;
  }
  const nodes = m[3]!.split(',').map((hostPort) => {
    const hp = /^(?:\[([0-9a-f:.]+)\]|([a-z0-9._-]+))(?::(\d{1,5}))?$/i.exec(hostPort.trim());
    if (!hp) throw new Error(`invalid Redis cluster node "${hostPort}" in ${redactRedisUrl(url)}`);
    return { host: hp[1] ?? hp[2]!, port: hp[3] ? Number(hp[3]) : 6379 };
  });
  return { nodes, username, password, tls };
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
    return new Cluster(nodes, clusterOptions);
  }
  if (!/^rediss?:\/\//i.test(url)) throw new Error(`unsupported Redis URL ${redactRedisUrl(url)}`);
  return new Redis(url, baseOptions(o));
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
