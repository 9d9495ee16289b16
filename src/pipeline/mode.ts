import type { AuthMode, Config } from '../config/types';

export interface ModeFacts {
  /** A JWT secret/JWKS/OIDC issuer or a bootstrap token is configured. */
  readonly staticSources: boolean;
  /** The token index has loaded once: until then "no tokens" is unknown, not a fact. */
  readonly loaded: boolean;
  readonly tokens: number;
}

/**
 * The global mode in force. An unset mode enforces (`required`) until the index has loaded once,
 * so a store unreachable at start can never make every anonymous request an allow; after that it
 * enforces when any credential source exists, else it is `optional`.
 */
export function resolveMode(configured: AuthMode | undefined, f: ModeFacts): AuthMode {
  if (configured) return configured;
  return !f.loaded || f.staticSources || f.tokens > 0 ? 'required' : 'optional';
}

/** Why the mode is what it is, for the start line. */
export function describeMode(configured: AuthMode | undefined, f: ModeFacts): string {
  if (configured) return 'set by ORCHEO_AUTH_MODE';
  if (!f.loaded) return 'token store not loaded yet; enforcing until it loads';
  if (f.staticSources) return 'a credential source (JWT or bootstrap token) is configured';
  if (f.tokens > 0) return 'service tokens exist';
  return 'no credential source configured; anonymous requests are allowed';
}

/** Which rate limits are on: they are off unless set. */
export function describeLimits(rl: Config['rateLimit']): string {
  const on: string[] = [];
  if (rl.ip > 0) on.push(`ip ${rl.ip} failures/${rl.intervalSeconds}s`);
  if (rl.identity > 0) on.push(`identity ${rl.identity} failures/${rl.intervalSeconds}s`);
  return on.length ? `rate limits on: ${on.join(', ')}` : 'rate limits off (ORCHEO_AUTH_RATE_LIMIT_IP / _IDENTITY unset)';
}
