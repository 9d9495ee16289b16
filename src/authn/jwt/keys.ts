/**
 * Key material: algorithm families, the HMAC secret, and in-memory key sets (static or fetched).
 *
 * The split between families is the security boundary: an HMAC algorithm is only ever verified with
 * the configured secret, an asymmetric one only with a JWKS key. Routing by family here (instead of
 * handing jose one resolver for everything) is what makes "HS256 signed with the RSA public key"
 * impossible, whatever a key set contains.
 */
import { createLocalJWKSet, errors, type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters } from 'jose';
import { webcrypto } from 'node:crypto';

export const HMAC_ALGORITHMS: ReadonlySet<string> = new Set(['HS256', 'HS384', 'HS512']);
/** Asymmetric JWS algorithms jose 6 verifies on Node 20. */
export const ASYMMETRIC_ALGORITHMS: ReadonlySet<string> = new Set([
  'RS256', 'RS384', 'RS512',
  'PS256', 'PS384', 'PS512',
  'ES256', 'ES384', 'ES512',
  'EdDSA', 'Ed25519',
]);

/** Where the key that verified a token came from; decides which cache entries a rotation drops. */
export type KeySource = 'secret' | 'static' | 'remote';

/**
 * Keeps only algorithms that can be verified at all (`none` and unknown names are discarded), so
 * the allow-list handed to jose is never wider than what the key routing below supports.
 */
export function usableAlgorithms(allowed: readonly string[]): { usable: Set<string>; ignored: string[] } {
  const usable = new Set<string>();
  const ignored: string[] = [];
  for (const raw of allowed) {
    const alg = raw.trim();
    if (HMAC_ALGORITHMS.has(alg) || ASYMMETRIC_ALGORITHMS.has(alg)) usable.add(alg);
    else if (alg) ignored.push(alg);
  }
  return { usable, ignored };
}

const HMAC_HASH: Readonly<Record<string, string>> = { HS256: 'SHA-256', HS384: 'SHA-384', HS512: 'SHA-512' };

/**
 * HMAC keys imported once per algorithm: passing raw bytes to jose would re-import the secret on
 * every verification, which is a measurable part of the uncached cost.
 */
export function createSecretKeys(secret: string): (alg: string) => Promise<CryptoKey> {
  const raw = new TextEncoder().encode(secret);
  const imported = new Map<string, Promise<CryptoKey>>();
  return (alg) => {
    let key = imported.get(alg);
    if (!key) {
      const hash = HMAC_HASH[alg];
      if (!hash) return Promise.reject(new errors.JOSENotSupported(`not an HMAC algorithm: ${alg}`));
      key = webcrypto.subtle.importKey('raw', raw, { name: 'HMAC', hash }, false, ['verify']) as Promise<CryptoKey>;
      imported.set(alg, key);
    }
    return key;
  };
}

/** An immutable snapshot of one key set plus what rotation diffing needs. */
export interface KeySet {
  readonly resolve: ReturnType<typeof createLocalJWKSet>;
  /** kid → canonical JSON of the key, so a kid reused for different material counts as removed. */
  readonly kids: ReadonlyMap<string, string>;
  /** Canonical JSON of keys without a kid. */
  readonly unkeyed: ReadonlySet<string>;
  readonly size: number;
}

/** Builds a key set; throws (jose JWKSInvalid) when the document is not a JWK Set. */
export function buildKeySet(doc: unknown): KeySet {
  const jwks = doc as JSONWebKeySet;
  const resolve = createLocalJWKSet(jwks); // validates the shape and snapshots it
  const kids = new Map<string, string>();
  const unkeyed = new Set<string>();
  for (const jwk of jwks.keys) {
    const canonical = JSON.stringify(jwk);
    if (typeof jwk.kid === 'string') kids.set(jwk.kid, canonical);
    else unkeyed.add(canonical);
  }
  return { resolve, kids, unkeyed, size: jwks.keys.length };
}

/** What a refetch took away: cached tokens verified with these keys must be dropped. */
export interface KeyRemoval {
  readonly kids: ReadonlySet<string>;
  /** A key without kid disappeared; tokens verified without a kid can no longer be attributed. */
  readonly unkeyed: boolean;
}

export function diffKeySets(before: KeySet | undefined, after: KeySet): KeyRemoval | undefined {
  if (!before) return undefined;
  const kids = new Set<string>();
  for (const [kid, canonical] of before.kids) {
    if (after.kids.get(kid) !== canonical) kids.add(kid);
  }
  let unkeyed = false;
  for (const canonical of before.unkeyed) {
    if (!after.unkeyed.has(canonical)) unkeyed = true;
  }
  return kids.size > 0 || unkeyed ? { kids, unkeyed } : undefined;
}

/** More candidates than this for a kid-less token is a misconfigured set, not worth the CPU. */
const MAX_CANDIDATES = 5;

/**
 * Keys of `set` that may verify a token with this header: one when the kid (or the alg alone)
 * picks a single key, a few when a kid-less token matches several, `undefined` when none fits.
 * Import failures of a broken JWK propagate (the caller maps them to invalid_token).
 */
export async function candidateKeys(set: KeySet, header: JWSHeaderParameters): Promise<CryptoKey[] | undefined> {
  // Cheap pre-check: jose would scan the whole set to find nothing.
  if (typeof header.kid === 'string' && !set.kids.has(header.kid)) return undefined;
  try {
    return [await set.resolve(header)];
  } catch (err) {
    if (err instanceof errors.JWKSNoMatchingKey) return undefined;
    if (err instanceof errors.JWKSMultipleMatchingKeys) {
      const keys: CryptoKey[] = [];
      for await (const key of err as unknown as AsyncIterable<CryptoKey>) {
        keys.push(key);
        if (keys.length >= MAX_CANDIDATES) break;
      }
      return keys.length > 0 ? keys : undefined;
    }
    throw err;
  }
}
