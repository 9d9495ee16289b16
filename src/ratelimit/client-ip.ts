import { BlockList, isIP, isIPv4, SocketAddress } from 'node:net';

/** Envoy caps headers at 60 KiB by default; bounding the entries read keeps a forged header cheap anyway. */
const MAX_XFF_ENTRIES = 64;

/**
 * Parses one address as it appears in a source address or an x-forwarded-for entry, tolerating a port
 * (`1.2.3.4:80`, `[::1]:80`) and surrounding whitespace, and returns its canonical text: IPv6 lowercase and
 * compressed, zone dropped, IPv4-mapped IPv6 as plain IPv4, so one client maps to one rate-limit key.
 * Undefined when the text is not an IP address.
 */
export function normalizeIp(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let s = raw.trim();
  if (s === '' || s.length > 100) return undefined;
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  const v4port = bracketed ? null : /^([0-9.]+):(\d{1,5})$/.exec(s);
  const port = bracketed?.[2] ?? v4port?.[2];
  if (port !== undefined && Number(port) > 65535) return undefined;
  if (bracketed) s = bracketed[1]!;
  else if (v4port) s = v4port[1]!;
  const family = isIP(s);
  if (bracketed && family !== 6) return undefined; // brackets belong to IPv6 only
  if (family === 4) return s; // node accepts only canonical dotted quads (no leading zeros)
  if (family !== 6) return undefined;
  try {
    const canonical = new SocketAddress({ address: s, family: 'ipv6' }).address.toLowerCase();
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(canonical);
    if (mapped && isIPv4(mapped[1]!)) return mapped[1]!;
    return canonical;
  } catch {
    return undefined;
  }
}

/**
 * The client address used for the per-IP limit. trustedHops=0 ignores x-forwarded-for (clients can forge it).
 * trustedHops=N follows express "trust proxy N": of [source, xff entries right to left], the entry at index N,
 * or the last one (leftmost xff entry) when the chain is shorter. A malformed chosen entry yields the source
 * address, since a forged value must never choose the rate-limit key. Never throws.
 */
export function resolveClientIp(sourceAddress: string | undefined, xForwardedFor: string | undefined, trustedHops: number): string {
  try {
    const source = normalizeIp(sourceAddress);
    if (source === undefined) return 'unknown';
    const hops = Number.isFinite(trustedHops) ? Math.floor(trustedHops) : 0;
    if (hops <= 0 || !xForwardedFor) return source;
    const entries = rightmostEntries(xForwardedFor, Math.min(hops, MAX_XFF_ENTRIES));
    if (entries.length === 0) return source;
    // entries holds at most `hops` entries, so its last one is index N of the chain, or the leftmost entry.
    const chosen = entries[entries.length - 1]!;
    return normalizeIp(chosen) ?? source;
  } catch {
    return 'unknown';
  }
}

/** Up to `count` comma-separated entries, rightmost first, without splitting a huge header. */
function rightmostEntries(header: string, count: number): string[] {
  const out: string[] = [];
  let end = header.length;
  for (;;) {
    const comma = end > 0 ? header.lastIndexOf(',', end - 1) : -1;
    out.push(header.slice(comma + 1, end));
    if (comma < 0 || out.length >= count) break;
    end = comma;
  }
  // A header of only whitespace carries no hop at all.
  if (out.length === 1 && out[0]!.trim() === '') return [];
  return out;
}

/** The proxies whose `x-forwarded-for` the HTTP side believes, compiled once from canonical CIDRs. */
export interface TrustedProxies {
  /** True when the (already normalised) address lies in one of the CIDRs. */
  has(ip: string): boolean;
}

export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const c of cidrs) {
    const slash = c.lastIndexOf('/');
    const addr = c.slice(0, slash);
    list.addSubnet(addr, Number(c.slice(slash + 1)), isIPv4(addr) ? 'ipv4' : 'ipv6');
  }
  return {
    // BlockList matches an IPv4 rule against its IPv4-mapped IPv6 form too, and the reverse.
    has: (ip) => cidrs.length > 0 && (isIPv4(ip) ? list.check(ip, 'ipv4') : isIP(ip) === 6 && list.check(ip, 'ipv6')),
  };
}

/**
 * The client address on the HTTP side (admin API, HTTP authorization interface): the TCP peer,
 * unless the peer is a trusted proxy; then the `x-forwarded-for` entry `trustedHops` places from the
 * right (0 = the entry that proxy appended), the leftmost when the chain is shorter, the peer when
 * that entry is malformed. Unlike the gRPC path (where Envoy is always the peer), a header from an
 * untrusted peer is never read: any caller can write one. Never throws.
 */
export function resolveHttpClientIp(peer: string | undefined, xForwardedFor: string | undefined, proxies: TrustedProxies, trustedHops: number): string {
  const source = normalizeIp(peer);
  if (source === undefined) return 'unknown';
  if (!xForwardedFor || !proxies.has(source)) return source;
  const hops = Number.isFinite(trustedHops) ? Math.max(0, Math.floor(trustedHops)) : 0;
  // resolveClientIp counts the source as index 0; here index 0 is the rightmost header entry.
  return resolveClientIp(source, xForwardedFor, hops + 1);
}

/** resolveHttpClientIp bound to the configuration, for the HTTP listener. */
export function httpClientIp(cidrs: readonly string[], trustedHops: number): (peer: string | undefined, xff: string | undefined) => string {
  const proxies = trustedProxies(cidrs);
  return (peer, xff) => resolveHttpClientIp(peer, xff, proxies, trustedHops);
}
