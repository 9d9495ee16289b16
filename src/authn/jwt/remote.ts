/**
 * A remotely published key set (JWKS URL or OIDC-discovered jwks_uri).
 *
 * Why not jose's createRemoteJWKSet: it throws as soon as a refresh fails even when the previous
 * key set is perfectly usable (no stale-if-error), it ignores the provider's Cache-Control max-age,
 * its cooldown only starts after a *successful* fetch (so with the provider down every unknown kid
 * refetches), it cannot report fetch counts, and it does not tell "kid not in a fetched set" apart
 * from "no set at all" the way the deny codes need. So the fetching is ours and jose only selects
 * and imports keys from a snapshot (createLocalJWKSet, inside buildKeySet).
 *
 * Timing rules, all against the injected clock:
 * - freshness: min(ttl, max(max-age, MIN_TTL_MS)): the floor only tames a provider's `max-age=0`,
 *   an operator's explicit TTL below it is honoured; a stale set is still served while a
 *   background refresh runs (requests never wait for a routine refresh);
 * - stale-if-error: a set stays usable for MAX_STALE_MS after its fetch, whatever fails later;
 * - unknown kid: one refetch, unless another unknown kid caused one in the last COOLDOWN_MS (a
 *   routine or startup fetch does not start the cooldown: a key published a second after it is
 *   found at once); inside the cooldown an unknown kid is `no_key` while the last attempt
 *   succeeded and `unavailable` while it failed (the set we hold may be the outdated one);
 * - offline lookups (public routes) never start or wait for a fetch;
 * - after a failed attempt, routine refreshes wait FAILURE_BACKOFF_MS;
 * - every fetch is coalesced: at most one is in flight.
 */
import type { JWSHeaderParameters, CryptoKey } from 'jose';
import type { Logger } from 'pino';
import { buildKeySet, candidateKeys, diffKeySets, type KeyRemoval, type KeySet } from './keys';
import { fetchJson, redactUrl } from './fetch';

export const COOLDOWN_MS = 30_000;
export const FAILURE_BACKOFF_MS = 5_000;
export const MAX_STALE_MS = 24 * 60 * 60 * 1000;
/** Floor for min(ttl, max-age): a `max-age=0` provider must not turn every request into a fetch. */
export const MIN_TTL_MS = 5_000;

export type RemoteLookup =
  | { readonly kind: 'keys'; readonly keys: CryptoKey[] }
  | { readonly kind: 'no_key'; readonly detail: string }
  | { readonly kind: 'unavailable'; readonly detail: string };

export interface RemoteKeySet {
  lookup(header: JWSHeaderParameters, offline?: boolean): Promise<RemoteLookup>;
  /** Called on cache hits too, so a busy, fully cached service still notices rotations. */
  refreshIfStale(): void;
  /** A key set within its stale-if-error bound exists; cached verifications rely on it. */
  hasUsableKeys(): boolean;
  readonly ready: Promise<void>;
  primed(): boolean;
  counters(): { fetches: number; failures: number; keySetAgeMs: number | undefined };
  close(): void;
}

export interface RemoteKeySetOptions {
  /** Resolves the JWKS URL (may run OIDC discovery; throws when it cannot). */
  resolveUrl(cancel: AbortSignal): Promise<string>;
  ttlMs: number;
  timeoutMs: number;
  now: () => number;
  logger: Logger;
  /** Told which keys a refetch removed, so verified tokens that used them are forgotten. */
  onRemoved(removal: KeyRemoval): void;
  /** Overrides of the timer constants above (tests shorten them rather than wait). */
  intervals?: JwksIntervals | undefined;
}

export interface JwksIntervals {
  readonly backoffMs?: number | undefined;
  readonly cooldownMs?: number | undefined;
  readonly minTtlMs?: number | undefined;
}

export function createRemoteKeySet(opts: RemoteKeySetOptions): RemoteKeySet {
  const { now, logger } = opts;
  const backoffMs = opts.intervals?.backoffMs ?? FAILURE_BACKOFF_MS;
  const cooldownMs = opts.intervals?.cooldownMs ?? COOLDOWN_MS;
  const minTtlMs = opts.intervals?.minTtlMs ?? MIN_TTL_MS;
  const closer = new AbortController();
  let current: KeySet | undefined;
  let fetchedAt = Number.NEGATIVE_INFINITY;
  let freshUntil = Number.NEGATIVE_INFINITY;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let lastKidRefetchAt = Number.NEGATIVE_INFINITY;
  let lastFailed = false;
  let inflight: Promise<boolean> | undefined;
  let settledOnce = false;
  let fetches = 0;
  let failures = 0;

  const usable = (): KeySet | undefined => (current && now() - fetchedAt <= MAX_STALE_MS ? current : undefined);
  const backoffOver = (): boolean => !lastFailed || now() - lastAttemptAt >= backoffMs;

  async function attempt(reason: string): Promise<boolean> {
    let where = '<unresolved>';
    try {
      const url = await opts.resolveUrl(closer.signal);
      where = redactUrl(url);
      const { body, maxAgeSeconds } = await fetchJson(url, opts.timeoutMs, closer.signal);
      const next = buildKeySet(body);
      const ttlMs = Math.min(opts.ttlMs, maxAgeSeconds === undefined ? Infinity : Math.max(minTtlMs, maxAgeSeconds * 1000));
      const removal = diffKeySets(current, next);
      current = next;
      fetchedAt = now();
      freshUntil = fetchedAt + ttlMs;
      lastFailed = false;
      logger.info({ url: where, reason, keys: next.size, ttlSeconds: ttlMs / 1000 }, 'jwks fetched');
      if (removal) opts.onRemoved(removal);
      return true;
    } catch (err) {
      failures += 1;
      lastFailed = true;
      const staleFor = current ? Math.round((now() - fetchedAt) / 1000) : undefined;
      logger.warn(
        { url: where, reason, err: err instanceof Error ? err.message : String(err), servingStaleForSeconds: staleFor },
        'jwks fetch failed',
      );
      return false;
    }
  }

  /** Starts a fetch unless one is running; every caller shares the same promise. Never rejects. */
  function refresh(reason: string): Promise<boolean> {
    if (inflight) return inflight;
    if (closer.signal.aborted) return Promise.resolve(false);
    lastAttemptAt = now();
    fetches += 1;
    const p = attempt(reason).finally(() => {
      settledOnce = true;
      if (inflight === p) inflight = undefined;
    });
    inflight = p;
    return p;
  }

  function refreshIfStale(): void {
    if (!inflight && now() >= freshUntil && backoffOver()) void refresh(current ? 'ttl expired' : 'no key set');
  }

  async function lookup(header: JWSHeaderParameters, offline = false): Promise<RemoteLookup> {
    let set = usable();
    if (offline) {
      const keys = set ? await candidateKeys(set, header) : undefined;
      if (keys) return { kind: 'keys', keys };
      return set && !lastFailed ? { kind: 'no_key', detail: 'no key in memory matches the token (offline)' } : { kind: 'unavailable', detail: 'no usable key in memory (offline)' };
    }
    if (!set) {
      if (inflight) await inflight;
      else if (backoffOver()) await refresh('no key set');
      set = usable();
      if (!set) return { kind: 'unavailable', detail: 'no key set could be fetched' };
    } else {
      refreshIfStale();
    }
    const keys = await candidateKeys(set, header);
    if (keys) return { kind: 'keys', keys };

    // Nothing fits: maybe the provider rotated. One refetch per cooldown, shared by all askers.
    let ok: boolean | undefined;
    if (inflight) ok = await inflight;
    else if (now() - lastKidRefetchAt >= cooldownMs) {
      lastKidRefetchAt = now();
      ok = await refresh('unknown kid');
    }
    if (ok === true) {
      const fresh = usable();
      const retry = fresh && fresh !== set ? await candidateKeys(fresh, header) : undefined;
      if (retry) return { kind: 'keys', keys: retry };
    }
    if (ok === false) return { kind: 'unavailable', detail: 'no key fits and the refetch failed' };
    // Inside the cooldown: the set is only known to be current if the last attempt succeeded.
    if (ok === undefined && lastFailed) return { kind: 'unavailable', detail: 'no key fits and the provider is unreachable' };
    return { kind: 'no_key', detail: 'no key in the fetched set matches the token' };
  }

  const ready = refresh('startup').then(() => undefined);

  return {
    lookup,
    refreshIfStale,
    hasUsableKeys: () => usable() !== undefined,
    ready,
    primed: () => settledOnce,
    counters: () => ({ fetches, failures, keySetAgeMs: current ? now() - fetchedAt : undefined }),
    close: () => closer.abort(),
  };
}
