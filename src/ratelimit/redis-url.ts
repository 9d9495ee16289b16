import { redactUrl } from '../util/redact-url';

/**
 * Reading Redis URLs without loading ioredis: the configuration and the CLI validate
 * `ORCHEO_AUTH_REDIS_URL` on every start, and ioredis costs ~60-80 ms of CPU to load.
 */

/** Password of a Redis URL replaced, so the URL can appear in logs and errors. */
export const redactRedisUrl = redactUrl;

/** One node of a cluster URL (assignable to ioredis's ClusterNode). */
export interface RedisNode {
  host: string;
  port: number;
}

export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url);
}

/** Parses `redis+cluster://[user:pass@]host:port,host:port[/…]` (and `rediss+cluster://` for TLS). */
export function parseClusterUrl(url: string): { nodes: RedisNode[]; username?: string; password?: string; tls: boolean } {
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
