import { splitList } from '../util/list';
import { isIP } from 'node:net';

/**
 * Small typed readers for environment values. Each returns a value or records a problem naming the
 * variable; none of them throws, so `loadConfig` can report every problem at once.
 */
export type Env = Readonly<Record<string, string | undefined>>;

export class Problems {
  readonly list: string[] = [];
  add(variable: string, message: string): void {
    this.list.push(`${variable}: ${message}`);
  }
}

export function raw(env: Env, name: string): string | undefined {
  const v = env[name];
  if (v === undefined) return undefined;
  const t = v.trim();
  return t === '' ? undefined : t;
}

export function str(env: Env, name: string, p: Problems, maxLen = 65536): string | undefined {
  const v = raw(env, name);
  if (v !== undefined && v.length > maxLen) {
    p.add(name, `too long (${v.length} characters, at most ${maxLen})`);
    return undefined;
  }
  return v;
}

export function int(env: Env, name: string, p: Problems, def: number, min: number, max: number): number {
  const v = raw(env, name);
  if (v === undefined) return def;
  if (!/^[+]?\d+$/.test(v)) {
    p.add(name, `expected a whole number, got ${JSON.stringify(v.slice(0, 40))}`);
    return def;
  }
  const n = Number(v);
  if (n < min || n > max) {
    p.add(name, `must be between ${min} and ${max}, got ${n}`);
    return def;
  }
  return n;
}

export function num(env: Env, name: string, p: Problems, def: number, minExclusive: number, max: number): number {
  const v = raw(env, name);
  if (v === undefined) return def;
  const n = /^[+]?(\d+(\.\d*)?|\.\d+)$/.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(n)) {
    p.add(name, `expected a number of seconds, got ${JSON.stringify(v.slice(0, 40))}`);
    return def;
  }
  if (n <= minExclusive || n > max) {
    p.add(name, `must be greater than ${minExclusive} and at most ${max}, got ${n}`);
    return def;
  }
  return n;
}

const TRUE = new Set(['1', 'true', 'yes', 'on']);
const FALSE = new Set(['0', 'false', 'no', 'off']);

export function bool(env: Env, name: string, p: Problems, def: boolean): boolean {
  const v = raw(env, name);
  if (v === undefined) return def;
  const l = v.toLowerCase();
  if (TRUE.has(l)) return true;
  if (FALSE.has(l)) return false;
  p.add(name, `expected true or false, got ${JSON.stringify(v.slice(0, 40))}`);
  return def;
}

export function oneOf<T extends string>(env: Env, name: string, p: Problems, allowed: readonly T[]): T | undefined {
  const v = raw(env, name);
  if (v === undefined) return undefined;
  const l = v.toLowerCase() as T;
  if (allowed.includes(l)) return l;
  p.add(name, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(v.slice(0, 40))}`);
  return undefined;
}

/** Comma- or whitespace-separated list; empty entries dropped, order kept, duplicates removed. */
export function list(value: string | undefined): string[] {
  if (value === undefined) return [];
  return [...new Set(splitList(value))];
}

/**
 * Comma list of CIDRs (`10.0.0.0/8`, `::1/128`) or bare addresses (a /32 or /128). Returned in
 * canonical `address/prefix` form, frozen; an entry that is not one is a problem naming it.
 */
export function cidrs(env: Env, name: string, p: Problems): readonly string[] {
  const out: string[] = [];
  for (const entry of list(raw(env, name))) {
    const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(entry);
    const family = m ? isIP(m[1]!) : 0;
    const prefix = m?.[2] === undefined ? (family === 6 ? 128 : 32) : Number(m[2]);
    if (!m || family === 0 || prefix > (family === 6 ? 128 : 32)) {
      p.add(name, `expected a comma list of CIDRs such as 10.0.0.0/8 or ::1/128, got ${JSON.stringify(entry.slice(0, 60))}`);
      continue;
    }
    out.push(`${m[1]}/${prefix}`);
  }
  return Object.freeze(out);
}

export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** `host:port`, `[v6]:port` or `:port` (all interfaces). Port 0 picks a free port (tests). */
export function addr(env: Env, name: string, p: Problems, def: string): HostPort {
  const v = raw(env, name) ?? def;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(v);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    p.add(name, `expected host:port (e.g. 0.0.0.0:9191), got ${JSON.stringify(v.slice(0, 60))}`);
    const d = /^(.*):(\d+)$/.exec(def)!;
    return { host: d[1]!, port: Number(d[2]) };
  }
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/** Like addr, but `off` (any case) disables the listener: undefined. */
export function optionalAddr(env: Env, name: string, p: Problems, def: string): HostPort | undefined {
  return raw(env, name)?.toLowerCase() === 'off' ? undefined : addr(env, name, p, def);
}

/**
 * A URL path prefix (`/authz`): empty, or `/` followed by path characters, no trailing `/`, no
 * query, fragment, percent sign or control character, so stripping it from a request path is a
 * plain string comparison.
 */
export function pathPrefix(env: Env, name: string, p: Problems): string {
  const v = raw(env, name);
  if (v === undefined) return '';
  if (v.length > 256 || !/^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/.test(v)) {
    p.add(name, `expected a path prefix such as /authz (no trailing slash, query or percent-encoding), got ${JSON.stringify(v.slice(0, 60))}`);
    return '';
  }
  return v;
}

/** ISO 8601 timestamp or UNIX seconds → epoch milliseconds. */
export function instant(env: Env, name: string, p: Problems): number | undefined {
  const v = raw(env, name);
  if (v === undefined) return undefined;
  if (/^\d+(\.\d+)?$/.test(v)) {
    // 10^11 seconds is the year 5138: a number that large is milliseconds by mistake.
    if (Number(v) > 1e11) {
      p.add(name, `${v} looks like milliseconds; UNIX time here is in seconds (${Math.floor(Number(v) / 1000)})`);
      return undefined;
    }
    return Math.round(Number(v) * 1000);
  }
  const ms = /^\d{4}-\d{2}-\d{2}/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(ms)) {
    p.add(name, `expected an ISO 8601 timestamp (2024-05-01T12:00:00Z) or UNIX seconds, got ${JSON.stringify(v.slice(0, 40))}`);
    return undefined;
  }
  return ms;
}

export function url(env: Env, name: string, p: Problems, protocols: readonly string[]): string | undefined {
  const v = raw(env, name);
  if (v === undefined) return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    p.add(name, 'is not a valid URL');
    return undefined;
  }
  if (!protocols.includes(u.protocol)) {
    p.add(name, `expected a URL with scheme ${protocols.map((s) => s.replace(/:$/, '')).join(' or ')}, got ${u.protocol.replace(/:$/, '')}`);
    return undefined;
  }
  return v;
}

export { redactUrl } from '../util/redact-url';
