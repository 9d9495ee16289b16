import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Identity } from '../authn/types';
import type { KeySource } from './key-source';

/** No signing key is usable (store never reached, every key retired): the allow cannot carry one. */
export class KeyUnavailableError extends Error {}

interface Entry {
  readonly jws: string;
  readonly iatMs: number;
  readonly expMs: number;
  /** Re-use ends here: a tenth of the lifetime before `exp`. */
  readonly freshUntil: number;
  readonly tokenId: string;
  readonly kid: string;
  readonly audience: string;
  /** Set when the entry leaves the cache (evicted, or its credential changed). */
  dropped: boolean;
}

export interface SignerOptions {
  readonly source: KeySource;
  readonly issuer: string;
  readonly ttlSeconds: number;
  /** The clock claims and key selection use (the app passes the database clock). */
  readonly now: () => number;
  /** Bound of the assertion cache (entries). */
  readonly maxEntries?: number;
}

const sorted = (s: ReadonlySet<string>): string[] => [...s].sort();

/** Everything an assertion says about an identity: two identities with the same key get the same claims. */
const identityKeys = new WeakMap<Identity, string>();
function identityKey(id: Identity): string {
  let k = identityKeys.get(id);
  if (k === undefined) {
    k = JSON.stringify([id.source, id.tokenId, id.subject, id.type, sorted(id.scopes), sorted(id.workspaces), id.expiresAt ?? null]);
    identityKeys.set(id, k);
  }
  return k;
}

/**
 * Signs identity assertions and re-uses each one for the same identity, audience and key until
 * less than a tenth of its lifetime is left. The key id is part of the cache key, so a rotation
 * never serves an assertion of the previous key; `dropToken` forgets exactly a credential's entries.
 */
export class AssertionSigner {
  private readonly cache: LRUCache<string, Entry>;
  private readonly byToken = new Map<string, Set<string>>();
  private readonly last = new WeakMap<Identity, Entry>();
  /** Signatures made (cache misses), for the bench and tests. */
  signed = 0;

  constructor(private readonly opts: SignerOptions) {
    this.cache = new LRUCache<string, Entry>({
      max: opts.maxEntries ?? 10_000,
      dispose: (e, key) => {
        e.dropped = true;
        const set = this.byToken.get(e.tokenId);
        if (!set) return;
        set.delete(key);
        if (set.size === 0) this.byToken.delete(e.tokenId);
      },
    });
  }

  /**
   * The cached assertion when it can be re-used, synchronously (the hot path: no promise, no key
   * string built). Every identity remembers its last entry; the LRU holds the rest.
   */
  cached(identity: Identity, audience: string): string | undefined {
    const now = this.opts.now();
    const key = this.opts.source.keys().signing(now);
    if (!key) return undefined;
    const last = this.last.get(identity);
    if (last && !last.dropped && last.kid === key.kid && last.audience === audience && now < last.freshUntil) return last.jws;
    const hit = this.cache.get(`${key.kid}\n${audience}\n${identityKey(identity)}`);
    if (!hit || now >= hit.freshUntil) return undefined;
    this.last.set(identity, hit);
    return hit.jws;
  }

  /** The compact JWS for this identity and audience. Throws KeyUnavailableError without a usable key. */
  async assertion(identity: Identity, audience: string): Promise<string> {
    const reused = this.cached(identity, audience);
    if (reused !== undefined) return reused;
    const now = this.opts.now();
    const key = this.opts.source.keys().signing(now);
    if (!key?.privateKey) throw new KeyUnavailableError('no identity assertion signing key is available');
    const cacheKey = `${key.kid}\n${audience}\n${identityKey(identity)}`;

    const iat = Math.floor(now / 1000);
    let exp = iat + this.opts.ttlSeconds;
    // Never outlive the credential it vouches for.
    if (identity.expiresAt !== undefined) exp = Math.min(exp, Math.floor(identity.expiresAt / 1000));
    const jws = await new SignJWT({
      orcheo: { identity_type: identity.type, token_id: identity.tokenId, scopes: sorted(identity.scopes), workspace_ids: sorted(identity.workspaces) },
    })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' })
      .setIssuer(this.opts.issuer)
      .setAudience(audience)
      .setSubject(identity.subject)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(key.privateKey);
    this.signed += 1;
    const entry: Entry = { jws, iatMs: iat * 1000, expMs: exp * 1000, freshUntil: exp * 1000 - ((exp - iat) * 1000) / 10, tokenId: identity.tokenId, kid: key.kid, audience, dropped: false };
    this.cache.set(cacheKey, entry);
    this.last.set(identity, entry);
    let set = this.byToken.get(identity.tokenId);
    if (!set) this.byToken.set(identity.tokenId, (set = new Set()));
    set.add(cacheKey);
    return jws;
  }

  /** Forgets every cached assertion of this credential (its record changed: revoked, rotated, deleted). */
  dropToken(tokenId: string): void {
    const set = this.byToken.get(tokenId);
    if (!set) return;
    for (const key of [...set]) this.cache.delete(key);
    this.byToken.delete(tokenId);
  }

  /** Cached assertions of a credential (tests). */
  cachedFor(tokenId: string): number {
    return this.byToken.get(tokenId)?.size ?? 0;
  }

  get size(): number {
    return this.cache.size;
  }
}
