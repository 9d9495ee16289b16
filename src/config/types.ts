import type { HostPort } from './parse';

export type AuthMode = 'disabled' | 'optional' | 'required';

export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly clientCa?: string | undefined;
}

export interface BootstrapConfig {
  /** Non-enumerable: never serialised or logged. */
  readonly token: string;
  readonly scopes: readonly string[];
  readonly expiresAt?: number | undefined;
}

export interface JwtConfig {
  /** Non-enumerable when set. */
  readonly secret?: string | undefined;
  readonly allowedAlgorithms: readonly string[];
  readonly audiences: readonly string[];
  readonly issuer?: string | undefined;
  readonly jwksUrl?: string | undefined;
  readonly oidcIssuer?: string | undefined;
  readonly staticJwks?: { keys: unknown[] } | undefined;
  readonly jwksCacheTtlSeconds: number;
  readonly jwksTimeoutSeconds: number;
  readonly leewaySeconds: number;
  /** A JWT without `exp` is refused (default true). */
  readonly requireExp: boolean;
  /** A `*` in a JWT's workspace claims grants every workspace (default false: dropped). */
  readonly wildcardWorkspace: boolean;
}

export interface RateLimitConfig {
  /** Failures allowed per IP per window; 0 disables. */
  readonly ip: number;
  readonly identity: number;
  readonly intervalSeconds: number;
  readonly failClosed: boolean;
  readonly xffTrustedHops: number;
  /** Redis key prefix; deployments sharing one Redis keep their windows apart with it. */
  readonly keyPrefix: string;
}

/** Signed identity assertions (`x-orcheo-identity`) for upstreams that verify. */
export interface AssertionConfig {
  readonly enabled: boolean;
  /** Lower-cased header name. */
  readonly header: string;
  readonly issuer: string;
  /** Fallback `aud` when neither the rule nor the context extension names one. */
  readonly audience?: string | undefined;
  readonly ttlSeconds: number;
  /** PEM private key (P-256 or Ed25519); unset: keys generated and kept in the token store. */
  readonly keyFile?: string | undefined;
}

export interface Config {
  readonly grpc: HostPort & { readonly tls?: TlsFiles | undefined };
  readonly http: HostPort & { readonly tls?: TlsFiles | undefined };
  /** The HTTP authorization interface; `addr` undefined when `ORCHEO_AUTH_HTTP_AUTHZ_ADDR=off`. */
  readonly httpAuthz: { readonly addr: HostPort | undefined; readonly pathPrefix: string };
  /** Explicit mode, or undefined: optional that enforces once any credential source exists. */
  readonly mode: AuthMode | undefined;
  /** Non-enumerable when set (may carry a password). */
  readonly databaseUrl?: string | undefined;
  readonly dbPath: string;
  readonly autoMigrate: boolean;
  /** Every route in shadow: would-be denials are logged, counted and allowed (ORCHEO_AUTH_DRY_RUN). */
  readonly dryRun: boolean;
  /** Non-enumerable when set. */
  readonly redisUrl?: string | undefined;
  readonly policyFile?: string | undefined;
  readonly bootstrap?: BootstrapConfig | undefined;
  readonly jwt: JwtConfig;
  readonly rateLimit: RateLimitConfig;
  /**
   * CIDRs of proxies whose `x-forwarded-for` the HTTP side (admin API, HTTP authorization
   * interface) believes; from any other TCP peer the header is ignored. Empty by default.
   */
  readonly trustedProxies: readonly string[];
  readonly log: {
    readonly level: string;
    readonly sensitiveDebug: boolean;
    /** `request denied` lines per deny code per second (ORCHEO_AUTH_DENY_LOG_RATE; Infinity for `all`). */
    readonly denyRate: number;
  };
  readonly assertion: AssertionConfig;
}

/** `request denied` lines per deny code per second before the rest are only counted (ORCHEO_AUTH_DENY_LOG_RATE). */
export const DEFAULT_DENY_LOG_RATE = 100;
