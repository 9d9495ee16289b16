/**
 * Verified-token cache. An uncached verification costs tens of microseconds of signature math; a
 * hit costs one SHA-256 and a map lookup. Keyed by SHA-256 of the token so a heap dump never holds
 * bearer tokens. Only successes are stored: failures are either cheap (structural) or must be
 * re-evaluated (a missing key may appear after a refetch).
 *
 * lru-cache's own TTL is not used because expiry must follow the token's `exp` under the injected
 * clock with jose's leeway rule, which `isExpired` applies on every hit.
 */
import { hashSecret } from '../../store/records';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../types';
import type { KeyRemoval, KeySource } from './keys';

export interface CachedToken {
  readonly identity: Identity;
  /** `exp` claim in epoch seconds, when present. */
  readonly exp: number | undefined;
  readonly source: KeySource;
  /** Header kid of the token, for dropping it when that key leaves the set. */
  readonly kid: string | undefined;
}

/** jose's rule, so a token is refused from the cache at exactly the moment jose would refuse it. */
export function isExpired(exp: number | undefined, nowMs: number, leewaySeconds: number): boolean {
  return exp !== undefined && exp <= Math.floor(nowMs / 1000) - leewaySeconds;
}

/** Must stay `hashSecret`: the authenticator chain hands every kind that digest (AuthnOptions.digest). */
export function tokenKey(token: string): string {
  return hashSecret(token);
}

export interface TokenCache {
  get(key: string): CachedToken | undefined;
  /** get() that counts nothing and leaves the entry's recency alone (explain). */
  peek(key: string): CachedToken | undefined;
  set(key: string, entry: CachedToken): void;
  delete(key: string): void;
  /** Forgets every remotely verified token whose key was removed; returns how many. */
  dropRemoved(removal: KeyRemoval): number;
  clear(): void;
  stats(): { cacheHits: number; cacheMisses: number; cacheSize: number };
}

export function createTokenCache(maxEntries: number): TokenCache {
  const lru = new LRUCache<string, CachedToken>({ max: Math.max(1, Math.floor(maxEntries)) });
  let hits = 0;
  let misses = 0;
  return {
    get(key) {
      const entry = lru.get(key);
      if (entry) hits += 1;
      else misses += 1;
      return entry;
    },
    peek: (key) => lru.peek(key),
    set: (key, entry) => void lru.set(key, entry),
    delete: (key) => void lru.delete(key),
    dropRemoved(removal) {
      const doomed: string[] = [];
      // A full scan is fine: it runs once per rotation, not per request.
      for (const [key, entry] of lru.entries()) {
        if (entry.source !== 'remote') continue;
        // A kid-less token may have matched any key of the set, so any removal drops it.
        if (entry.kid === undefined || removal.kids.has(entry.kid)) doomed.push(key);
      }
      for (const key of doomed) lru.delete(key);
      return doomed.length;
    },
    clear: () => lru.clear(),
    stats: () => ({ cacheHits: hits, cacheMisses: misses, cacheSize: lru.size }),
  };
}
