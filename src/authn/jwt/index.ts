/**
 * JWT identity kind: wires key sources, the verified-token cache and claim mapping behind the
 * Authenticator interface. A cache hit answers synchronously; everything else is async.
 */
import { MAX_TOKEN_LENGTH } from '../../util/limits';
import { decodeProtectedHeader, type JWSHeaderParameters } from 'jose';
import type { Logger } from 'pino';
import type { Authenticator, AuthnOptions, AuthnResult } from '../types';
import { createTokenCache, isExpired, tokenKey } from './cache';
import { identityFromClaims } from './claims';
import { rejected } from './errors';
import { createDiscovery } from './fetch';
import { HMAC_ALGORITHMS, buildKeySet, createSecretKeys, usableAlgorithms, type KeySet } from './keys';
import { createRemoteKeySet, FAILURE_BACKOFF_MS, type JwksIntervals, type RemoteKeySet } from './remote';
import { verifyJwt, type VerifierConfig } from './verify';

export interface JwtOptions {
  secret?: string;
  allowedAlgorithms: readonly string[];
  audiences: readonly string[];
  issuer?: string;
  jwksUrl?: string;
  oidcIssuer?: string;
  staticJwks?: { keys: unknown[] };
  jwksCacheTtlSeconds: number;
  jwksTimeoutSeconds: number;
  leewaySeconds: number;
  /** Default true: a JWT without `exp` is refused. */
  requireExp?: boolean;
  /** Default false: a `*` in the workspace claims is dropped. */
  wildcardWorkspace?: boolean;
  cacheMaxEntries?: number;
}

export interface JwtAuthenticator extends Authenticator {
  /** Resolves when remote keys were fetched once (or failed; never rejects). Used by /readyz. */
  ready(): Promise<void>;
  /** True once ready() has resolved (immediately when no remote key source is configured). */
  readonly primed: () => boolean;
  stats(): { cacheHits: number; cacheMisses: number; cacheSize: number; jwksFetches: number; jwksFetchFailures: number; jwksKeySetAgeSeconds: number | undefined };
  close(): void;
}

/** Three base64url segments; the signature may be empty so `alg: none` tokens get a precise deny. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const DEFAULT_CACHE_ENTRIES = 10_000;

export function createJwtAuthenticator(
  opts: JwtOptions,
  deps: { logger: Logger; now?: () => number; intervals?: JwksIntervals | undefined },
): JwtAuthenticator | undefined {
  const hasSecret = typeof opts.secret === 'string' && opts.secret.length > 0;
  if (!hasSecret && !opts.jwksUrl && !opts.oidcIssuer && !opts.staticJwks) return undefined;

  const logger = deps.logger.child({ component: 'jwt' });
  const now = deps.now ?? Date.now;
  const { usable, ignored } = usableAlgorithms(opts.allowedAlgorithms);
  if (ignored.length > 0) logger.warn({ ignored }, 'ignoring algorithms that cannot be verified (never "none")');

  let staticSet: KeySet | undefined;
  if (opts.staticJwks) {
    try {
      staticSet = buildKeySet(opts.staticJwks);
    } catch (err) {
      throw new Error(`ORCHEO_AUTH_JWKS_STATIC: not a JSON Web Key Set (${err instanceof Error ? err.message : String(err)})`);
    }
  }

  const cache = createTokenCache(opts.cacheMaxEntries ?? DEFAULT_CACHE_ENTRIES);
  const discovery = opts.oidcIssuer ? createDiscovery(opts.oidcIssuer, opts.jwksTimeoutSeconds * 1000) : undefined;
  // Discovery is only needed for what was not configured explicitly.
  const needDiscovery = discovery !== undefined && (!opts.jwksUrl || opts.issuer === undefined);
  let remote: RemoteKeySet | undefined;
  /** Bumped on every rotation that removed keys; see verifyMiss. */
  let removals = 0;
  if (opts.jwksUrl || discovery) {
    remote = createRemoteKeySet({
      async resolveUrl(cancel) {
        const found = needDiscovery && discovery ? await discovery.get(cancel) : undefined;
        const url = opts.jwksUrl ?? found?.jwksUri;
        if (!url) throw new Error('no JWKS URL');
        return url;
      },
      ttlMs: opts.jwksCacheTtlSeconds * 1000,
      timeoutMs: opts.jwksTimeoutSeconds * 1000,
      now,
      logger,
      intervals: deps.intervals,
      onRemoved(removal) {
        removals += 1;
        const dropped = cache.dropRemoved(removal);
        logger.info({ removedKids: [...removal.kids], droppedCachedTokens: dropped }, 'jwks keys removed');
      },
    });
  }

  const cfg: VerifierConfig = {
    algorithms: usable,
    secretKey: hasSecret ? createSecretKeys(opts.secret as string) : undefined,
    staticSet,
    remote,
    audiences: opts.audiences.filter((a) => a.length > 0),
    // Explicit issuer wins; else the discovered one; before discovery succeeds, the configured
    // OIDC issuer (which the spec requires the discovered one to equal).
    issuer: () => opts.issuer ?? discovery?.current()?.issuer ?? opts.oidcIssuer,
    leewaySeconds: opts.leewaySeconds,
    retryAfterSeconds: Math.max(1, Math.ceil((deps.intervals?.backoffMs ?? FAILURE_BACKOFF_MS) / 1000)),
  };
  warnAboutUnusableAlgorithms(logger, usable, cfg);

  async function verifyMiss(token: string, key: string, header: JWSHeaderParameters, nowMs: number, offline: boolean, remember: boolean): Promise<AuthnResult> {
    const removalsBefore = removals;
    const outcome = await verifyJwt(cfg, token, header, nowMs, offline);
    if (!outcome.ok) {
      logger.debug({ code: outcome.code, detail: outcome.detail }, 'jwt rejected');
      const extra = outcome.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: outcome.retryAfterSeconds };
      return rejected(outcome.code, { identityKey: outcome.subject, detail: outcome.detail, ...extra });
    }
    const claims = identityFromClaims(outcome.payload, nowMs, opts.leewaySeconds, { requireExp: opts.requireExp, wildcardWorkspace: opts.wildcardWorkspace });
    if (!claims.ok) {
      logger.debug({ code: 'auth.invalid_token', detail: claims.detail }, 'jwt rejected');
      return rejected('auth.invalid_token', { identityKey: claims.subject, detail: claims.detail });
    }
    const exp = typeof outcome.payload.exp === 'number' ? outcome.payload.exp : undefined;
    // A rotation that landed while jose was verifying may have removed the very key used: this
    // answer stands, but it must not be remembered past the rotation.
    if (remember && (outcome.source !== 'remote' || removals === removalsBefore)) {
      cache.set(key, { identity: claims.identity, exp, source: outcome.source, kid: header.kid });
    }
    return { kind: 'identified', identity: claims.identity };
  }

  function authenticate(token: string, nowMs: number, authnOpts?: AuthnOptions): AuthnResult | Promise<AuthnResult> {
    try {
      if (typeof token !== 'string') return { kind: 'skip' };
      if (token.length > MAX_TOKEN_LENGTH) return rejected('auth.invalid_token', { detail: 'token too large' });
      if (!JWT_SHAPE.test(token)) return { kind: 'skip' };

      const key = authnOpts?.digest ?? tokenKey(token);
      // Explain decides exactly as a Check would but changes nothing: no hit or miss counted, no
      // entry added, dropped or refreshed.
      const quiet = authnOpts?.quiet === true;
      let hit = quiet ? cache.peek(key) : cache.get(key);
      if (hit?.source === 'remote' && remote) {
        remote.refreshIfStale();
        // Past the stale-if-error bound the cache must not outlive the keys it was built on.
        if (!remote.hasUsableKeys()) {
          if (!quiet) cache.delete(key);
          hit = undefined;
        }
      }
      if (hit) {
        if (isExpired(hit.exp, nowMs, opts.leewaySeconds)) {
          if (!quiet) cache.delete(key);
          return rejected('auth.token_expired', { identityKey: hit.identity.subject, detail: 'cached token expired' });
        }
        return { kind: 'identified', identity: hit.identity };
      }

      let header: JWSHeaderParameters;
      try {
        header = decodeProtectedHeader(token) as JWSHeaderParameters;
      } catch {
        return rejected('auth.invalid_token', { detail: 'malformed protected header' });
      }
      if (header.kid !== undefined && typeof header.kid !== 'string') {
        return rejected('auth.invalid_token', { detail: 'kid header is not a string' });
      }
      return verifyMiss(token, key, header, nowMs, authnOpts?.offline === true, !quiet).catch((err: unknown) => unexpected(err));
    } catch (err) {
      return unexpected(err);
    }
  }

  function unexpected(err: unknown): AuthnResult {
    logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'unexpected error verifying a JWT');
    return rejected('auth.invalid_token', { detail: 'internal verification error' });
  }

  const readyPromise = remote ? remote.ready : Promise.resolve();

  return {
    name: 'jwt',
    authenticate,
    ready: () => readyPromise,
    primed: () => (remote ? remote.primed() : true),
    stats() {
      const counters = remote?.counters() ?? { fetches: 0, failures: 0, keySetAgeMs: undefined };
      const age = counters.keySetAgeMs === undefined ? undefined : counters.keySetAgeMs / 1000;
      return { ...cache.stats(), jwksFetches: counters.fetches, jwksFetchFailures: counters.failures, jwksKeySetAgeSeconds: age };
    },
    close() {
      remote?.close();
      cache.clear();
    },
  };
}

function warnAboutUnusableAlgorithms(logger: Logger, usable: ReadonlySet<string>, cfg: VerifierConfig): void {
  const hasKeys = cfg.staticSet !== undefined || cfg.remote !== undefined;
  const verifiable = [...usable].filter((alg) => (HMAC_ALGORITHMS.has(alg) ? cfg.secretKey !== undefined : hasKeys));
  if (verifiable.length === 0) {
    logger.warn({ allowed: [...usable] }, 'no allowed JWT algorithm has a configured key: every JWT will be refused');
  }
}
