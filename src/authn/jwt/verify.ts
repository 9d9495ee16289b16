/**
 * One uncached verification: pick the key family from the header's alg, find the key(s), let jose
 * check signature and registered claims. Returns an outcome instead of throwing so the caller has a
 * single place that turns it into an AuthnResult.
 */
import { errors, jwtVerify, type CryptoKey, type JWTPayload, type JWSHeaderParameters, type JWTVerifyOptions } from 'jose';
import type { DenyCode } from '../../errors/deny';
import { mapJoseError } from './errors';
import { ASYMMETRIC_ALGORITHMS, HMAC_ALGORITHMS, candidateKeys, type KeySet, type KeySource } from './keys';
import type { RemoteKeySet } from './remote';
import { FAILURE_BACKOFF_MS } from './remote';

export interface VerifierConfig {
  /** Already reduced to algorithms that have a verifier (see usableAlgorithms). */
  readonly algorithms: ReadonlySet<string>;
  readonly secretKey: ((alg: string) => Promise<CryptoKey>) | undefined;
  readonly staticSet: KeySet | undefined;
  readonly remote: RemoteKeySet | undefined;
  readonly audiences: readonly string[];
  /** Read per verification: with OIDC the discovered issuer appears after startup. */
  readonly issuer: () => string | undefined;
  readonly leewaySeconds: number;
  /** Retry-After on a key_unavailable deny: the failure backoff, in whole seconds (default 5). */
  readonly retryAfterSeconds?: number;
}

export type VerifyOutcome =
  | { readonly ok: true; readonly payload: JWTPayload; readonly source: KeySource }
  | {
      readonly ok: false;
      readonly code: DenyCode;
      readonly detail: string;
      /** Set only when the signature verified (a claim failed). */
      readonly subject?: string | undefined;
      readonly retryAfterSeconds?: number;
    };

type KeyChoice =
  | { readonly ok: true; readonly keys: CryptoKey[]; readonly source: KeySource }
  | Extract<VerifyOutcome, { ok: false }>;

async function chooseKeys(cfg: VerifierConfig, alg: string, header: JWSHeaderParameters, offline: boolean): Promise<KeyChoice> {
  if (HMAC_ALGORITHMS.has(alg)) {
    if (!cfg.secretKey) return { ok: false, code: 'auth.unsupported_algorithm', detail: `${alg} token but no JWT secret configured` };
    return { ok: true, keys: [await cfg.secretKey(alg)], source: 'secret' };
  }
  if (!ASYMMETRIC_ALGORITHMS.has(alg) || (!cfg.staticSet && !cfg.remote)) {
    return { ok: false, code: 'auth.unsupported_algorithm', detail: `${alg} token but no key set configured` };
  }
  if (cfg.staticSet) {
    const keys = await candidateKeys(cfg.staticSet, header);
    if (keys) return { ok: true, keys, source: 'static' };
  }
  if (!cfg.remote) return { ok: false, code: 'auth.invalid_token', detail: 'no static key matches the token' };
  const found = await cfg.remote.lookup(header, offline);
  if (found.kind === 'keys') return { ok: true, keys: found.keys, source: 'remote' };
  if (found.kind === 'no_key') return { ok: false, code: 'auth.invalid_token', detail: found.detail };
  return {
    ok: false,
    code: 'auth.key_unavailable',
    detail: found.detail,
    retryAfterSeconds: cfg.retryAfterSeconds ?? Math.ceil(FAILURE_BACKOFF_MS / 1000),
  };
}

export async function verifyJwt(
  cfg: VerifierConfig,
  token: string,
  header: JWSHeaderParameters,
  nowMs: number,
  /** Only keys already in memory: no JWKS fetch is started or awaited (public routes). */
  offline = false,
): Promise<VerifyOutcome> {
  const alg = header.alg;
  if (typeof alg !== 'string' || !cfg.algorithms.has(alg)) {
    return { ok: false, code: 'auth.unsupported_algorithm', detail: `alg ${String(alg).slice(0, 32)} not allowed` };
  }
  let choice: KeyChoice;
  try {
    choice = await chooseKeys(cfg, alg, header, offline);
  } catch (err) {
    const mapped = mapJoseError(err); // a broken JWK in the set, typically
    return { ok: false, code: mapped.code, detail: `key selection: ${mapped.detail}` };
  }
  if (!choice.ok) return choice;

  const options: JWTVerifyOptions = {
    algorithms: [alg], // the one alg already vetted above; jose re-checks the header against it
    clockTolerance: cfg.leewaySeconds,
    currentDate: new Date(nowMs),
  };
  if (cfg.audiences.length > 0) options.audience = [...cfg.audiences];
  const issuer = cfg.issuer();
  if (issuer !== undefined) options.issuer = issuer;

  let lastError: unknown;
  for (const key of choice.keys) {
    try {
      const { payload } = await jwtVerify(token, key, options);
      return { ok: true, payload, source: choice.source };
    } catch (err) {
      lastError = err;
      // Only a signature mismatch means "maybe the next candidate"; claim failures are final.
      if (!(err instanceof errors.JWSSignatureVerificationFailed)) break;
    }
  }
  const mapped = mapJoseError(lastError);
  return { ok: false, code: mapped.code, detail: mapped.detail, subject: mapped.verifiedSubject };
}
