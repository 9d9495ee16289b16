import { homedir } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { ALL_SCOPES, isKnownScope } from '../authz/scopes';
import { addr, bool, cidrs, instant, int, list, num, oneOf, optionalAddr, pathPrefix, Problems, raw, str, url, type Env } from './parse';
import { isClusterUrl, parseClusterUrl } from '../ratelimit/redis-url';
import { DEFAULT_DENY_LOG_RATE, type AssertionConfig, type AuthMode, type Config, type JwtConfig, type TlsFiles } from './types';
import { readKeyFile } from '../assertion/key-file';

export class ConfigError extends Error {
  readonly code = 'config.invalid' as const;
  constructor(readonly problems: readonly string[]) {
    super(`invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const JWT_ALGORITHMS = ['HS256', 'HS384', 'HS512', 'RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const LOG_LEVELS = ['fatal', 'error', 'warn', 'warning', 'info', 'debug', 'trace', 'silent'];

function secret<T extends object>(target: T, key: string, value: string | undefined): void {
  if (value !== undefined) Object.defineProperty(target, key, { value, enumerable: false });
}

function tls(env: Env, prefix: string, p: Problems, withClientCa: boolean): TlsFiles | undefined {
  const cert = raw(env, `${prefix}_CERT`);
  const key = raw(env, `${prefix}_KEY`);
  const clientCa = withClientCa ? raw(env, `${prefix}_CLIENT_CA`) : undefined;
  if (!cert && !key && !clientCa) return undefined;
  if (!cert || !key) {
    p.add(cert ? `${prefix}_KEY` : `${prefix}_CERT`, `required when ${cert ? `${prefix}_CERT` : `${prefix}_KEY or ${prefix}_CLIENT_CA`} is set`);
    return undefined;
  }
  for (const [name, file] of [[`${prefix}_CERT`, cert], [`${prefix}_KEY`, key], [`${prefix}_CLIENT_CA`, clientCa]] as const) {
    if (file !== undefined && !existsSync(file)) p.add(name, `file not found: ${file}`);
  }
  return Object.freeze({ cert, key, clientCa });
}

function staticJwks(env: Env, p: Problems): { keys: unknown[] } | undefined {
  const name = raw(env, 'ORCHEO_AUTH_JWKS_STATIC') !== undefined ? 'ORCHEO_AUTH_JWKS_STATIC' : 'ORCHEO_AUTH_JWKS';
  const v = raw(env, name);
  if (v === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    p.add(name, 'is not valid JSON (expected {"keys": [...]})');
    return undefined;
  }
  const keys = Array.isArray(parsed) ? parsed : (parsed as { keys?: unknown })?.keys;
  if (!Array.isArray(keys) || keys.length === 0 || !keys.every((k) => typeof k === 'object' && k !== null && typeof (k as { kty?: unknown }).kty === 'string')) {
    p.add(name, 'must be a JWKS object {"keys": [...]} with at least one key that has a "kty"');
    return undefined;
  }
  return { keys };
}

function jwt(env: Env, p: Problems): JwtConfig {
  const algs = list(raw(env, 'ORCHEO_AUTH_ALLOWED_ALGORITHMS') ?? 'RS256,HS256');
  for (const a of algs) if (!JWT_ALGORITHMS.includes(a)) p.add('ORCHEO_AUTH_ALLOWED_ALGORITHMS', `unknown algorithm ${JSON.stringify(a)} (known: ${JWT_ALGORITHMS.join(', ')}; "none" is never allowed)`);
  if (algs.length === 0) p.add('ORCHEO_AUTH_ALLOWED_ALGORITHMS', 'must name at least one algorithm');
  const s = str(env, 'ORCHEO_AUTH_JWT_SECRET', p);
  const cfg: JwtConfig = {
    allowedAlgorithms: Object.freeze(algs.filter((a) => JWT_ALGORITHMS.includes(a))),
    audiences: Object.freeze(list(raw(env, 'ORCHEO_AUTH_AUDIENCE'))),
    issuer: raw(env, 'ORCHEO_AUTH_ISSUER'),
    jwksUrl: url(env, 'ORCHEO_AUTH_JWKS_URL', p, ['http:', 'https:']),
    oidcIssuer: url(env, 'ORCHEO_AUTH_OIDC_ISSUER', p, ['http:', 'https:']),
    staticJwks: staticJwks(env, p),
    jwksCacheTtlSeconds: int(env, 'ORCHEO_AUTH_JWKS_CACHE_TTL', p, 300, 1, 86400 * 7),
    jwksTimeoutSeconds: num(env, 'ORCHEO_AUTH_JWKS_TIMEOUT', p, 5, 0, 120),
    leewaySeconds: int(env, 'ORCHEO_AUTH_JWT_LEEWAY', p, 30, 0, 3600),
    requireExp: bool(env, 'ORCHEO_AUTH_JWT_REQUIRE_EXP', p, true),
    wildcardWorkspace: bool(env, 'ORCHEO_AUTH_JWT_WILDCARD_WORKSPACE', p, false),
  };
  secret(cfg, 'secret', s);
  return Object.freeze(cfg);
}

/** Header names the identity headers already use: the assertion must not overwrite one of them. */
const RESERVED_HEADERS = ['authenticated', 'subject', 'identity-type', 'token-id', 'scopes', 'workspaces'].map((f) => `x-orcheo-${f}`);

function assertion(env: Env, p: Problems): AssertionConfig {
  const header = (raw(env, 'ORCHEO_AUTH_ASSERTION_HEADER') ?? 'x-orcheo-identity').toLowerCase();
  // RFC 9110 token characters: Envoy refuses anything else in a header name.
  if (!/^[a-z0-9!#$%&'*+.^_`|~-]{1,128}$/.test(header)) p.add('ORCHEO_AUTH_ASSERTION_HEADER', `not a valid header name: ${JSON.stringify(header.slice(0, 60))}`);
  else if (RESERVED_HEADERS.includes(header) || ['authorization', 'host', 'cookie'].includes(header)) p.add('ORCHEO_AUTH_ASSERTION_HEADER', `${header} is already used; choose another name`);
  const keyFile = raw(env, 'ORCHEO_AUTH_ASSERTION_KEY_FILE');
  if (keyFile !== undefined) {
    try {
      readKeyFile(keyFile);
    } catch (err) {
      p.add('ORCHEO_AUTH_ASSERTION_KEY_FILE', (err as Error).message);
    }
  }
  return Object.freeze({
    enabled: bool(env, 'ORCHEO_AUTH_ASSERTION', p, false),
    header,
    issuer: str(env, 'ORCHEO_AUTH_ASSERTION_ISSUER', p, 1024) ?? 'orcheo-authz',
    audience: str(env, 'ORCHEO_AUTH_ASSERTION_AUDIENCE', p, 1024),
    ttlSeconds: int(env, 'ORCHEO_AUTH_ASSERTION_TTL', p, 300, 10, 86400),
    keyFile,
  });
}

/** Cluster URLs list several hosts (`redis+cluster://a:1,b:2`), which WHATWG URL refuses: parse them as the client does. */
function redisUrl(env: Env, p: Problems): string | undefined {
  const v = raw(env, 'ORCHEO_AUTH_REDIS_URL');
  if (v === undefined || !isClusterUrl(v)) return url(env, 'ORCHEO_AUTH_REDIS_URL', p, ['redis:', 'rediss:', 'redis+cluster:', 'rediss+cluster:']);
  try {
    parseClusterUrl(v);
    return v;
  } catch (err) {
    p.add('ORCHEO_AUTH_REDIS_URL', (err as Error).message);
    return undefined;
  }
}

/** Reads → parses → validates every variable, reporting all problems at once; the result is frozen. */
export function loadConfig(env: Env = process.env): Config {
  const p = new Problems();
  const mode = oneOf<AuthMode>(env, 'ORCHEO_AUTH_MODE', p, ['disabled', 'optional', 'required']);

  let bootstrap: Config['bootstrap'];
  const bootToken = raw(env, 'ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN');
  const bootScopes = list(raw(env, 'ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES'));
  for (const s of bootScopes) if (!isKnownScope(s)) p.add('ORCHEO_AUTH_BOOTSTRAP_TOKEN_SCOPES', `unknown scope ${JSON.stringify(s)} (known: ${ALL_SCOPES.join(', ')})`);
  const bootExpires = instant(env, 'ORCHEO_AUTH_BOOTSTRAP_TOKEN_EXPIRES_AT', p);
  if (bootToken !== undefined) {
    if (bootToken.length < 16) p.add('ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN', 'too short (at least 16 characters; generate one with `openssl rand -base64 32`)');
    const b = { scopes: Object.freeze(bootScopes.length ? bootScopes : [...ALL_SCOPES]), expiresAt: bootExpires };
    secret(b, 'token', bootToken);
    bootstrap = Object.freeze(b) as Config['bootstrap'];
  }

  const cfg = {
    grpc: { ...addr(env, 'ORCHEO_AUTH_GRPC_ADDR', p, '0.0.0.0:9191'), tls: tls(env, 'ORCHEO_AUTH_GRPC_TLS', p, true) },
    http: { ...addr(env, 'ORCHEO_AUTH_HTTP_ADDR', p, '0.0.0.0:8181'), tls: tls(env, 'ORCHEO_AUTH_HTTP_TLS', p, false) },
    httpAuthz: Object.freeze({ addr: optionalAddr(env, 'ORCHEO_AUTH_HTTP_AUTHZ_ADDR', p, '0.0.0.0:9192'), pathPrefix: pathPrefix(env, 'ORCHEO_AUTH_HTTP_AUTHZ_PATH_PREFIX', p) }),
    mode,
    dbPath: raw(env, 'ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH') ?? join(homedir(), '.orcheo', 'authz-db'),
    autoMigrate: bool(env, 'ORCHEO_AUTH_AUTO_MIGRATE', p, true),
    dryRun: bool(env, 'ORCHEO_AUTH_DRY_RUN', p, false),
    policyFile: raw(env, 'ORCHEO_AUTH_POLICY_FILE'),
    bootstrap,
    jwt: jwt(env, p),
    rateLimit: Object.freeze({
      ip: int(env, 'ORCHEO_AUTH_RATE_LIMIT_IP', p, 0, 0, 1_000_000),
      identity: int(env, 'ORCHEO_AUTH_RATE_LIMIT_IDENTITY', p, 0, 0, 1_000_000),
      intervalSeconds: int(env, 'ORCHEO_AUTH_RATE_LIMIT_INTERVAL', p, 60, 1, 86400),
      failClosed: bool(env, 'ORCHEO_AUTH_RATE_LIMIT_FAIL_CLOSED', p, false),
      xffTrustedHops: int(env, 'ORCHEO_AUTH_XFF_TRUSTED_HOPS', p, 0, 0, 32),
      keyPrefix: str(env, 'ORCHEO_AUTH_RATE_LIMIT_KEY_PREFIX', p, 200) ?? 'orcheo-authz:rl:',
    }),
    trustedProxies: cidrs(env, 'ORCHEO_AUTH_TRUSTED_PROXIES', p),
    log: Object.freeze({
      level: (oneOf(env, 'LOG_LEVEL', p, LOG_LEVELS) ?? 'info').replace('warning', 'warn'),
      sensitiveDebug: bool(env, 'LOG_SENSITIVE_DEBUG', p, false),
      // `all` writes a line for every denial; a number caps the lines per code per second (the rest are counted).
      denyRate: raw(env, 'ORCHEO_AUTH_DENY_LOG_RATE')?.toLowerCase() === 'all' ? Infinity : int(env, 'ORCHEO_AUTH_DENY_LOG_RATE', p, DEFAULT_DENY_LOG_RATE, 0, 1_000_000),
    }),
    assertion: assertion(env, p),
  };
  secret(cfg, 'databaseUrl', url(env, 'ORCHEO_AUTH_DATABASE_URL', p, ['postgres:', 'postgresql:']));
  secret(cfg, 'redisUrl', redisUrl(env, p));
  if (cfg.policyFile !== undefined && !existsSync(cfg.policyFile)) p.add('ORCHEO_AUTH_POLICY_FILE', `file not found: ${cfg.policyFile}`);

  if (p.list.length > 0) throw new ConfigError(p.list);
  Object.freeze(cfg.grpc);
  Object.freeze(cfg.http);
  return Object.freeze(cfg) as Config;
}

/** Credential sources that make an unset mode enforce, before looking at the token store. */
export function hasStaticCredentialSource(cfg: Config): boolean {
  const j = cfg.jwt;
  return Boolean(j.secret || j.jwksUrl || j.staticJwks || j.oidcIssuer || cfg.bootstrap);
}
