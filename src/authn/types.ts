import type { AuthError } from '../errors/deny';

export type IdentityType = 'user' | 'service' | 'anonymous';
export type CredentialSource = 'bootstrap' | 'service_token' | 'jwt' | 'none';

/** Who made the request, as every identity kind reports it. Immutable once built. */
export interface Identity {
  readonly authenticated: boolean;
  readonly type: IdentityType;
  readonly subject: string;
  /** Service token id, JWT `jti` (else `sub`), or `bootstrap`. */
  readonly tokenId: string;
  readonly scopes: ReadonlySet<string>;
  /** Workspace ids; the single entry `*` grants every workspace. */
  readonly workspaces: ReadonlySet<string>;
  readonly source: CredentialSource;
  /** Epoch milliseconds after which the credential is no longer valid, when known. */
  readonly expiresAt?: number | undefined;
}

export const ANONYMOUS: Identity = Object.freeze({
  authenticated: false,
  type: 'anonymous',
  subject: 'anonymous',
  tokenId: '',
  scopes: new Set<string>(),
  workspaces: new Set<string>(),
  source: 'none',
});

/**
 * Result of presenting a token to one identity kind.
 * - `identified`: the token is valid for this kind.
 * - `skip`: this kind does not recognise the token; the next kind is tried.
 * - `rejected`: the token belongs to this kind but is not acceptable (expired, revoked, bad signature…).
 *   `identityKey` names the identity when it is known (matched token id, verified JWT subject), so
 *   the per-identity rate limit can count the failure.
 */
export type AuthnResult =
  | { readonly kind: 'identified'; readonly identity: Identity }
  | { readonly kind: 'skip' }
  | { readonly kind: 'rejected'; readonly error: AuthError; readonly identityKey?: string | undefined };

export interface AuthnOptions {
  /**
   * Answer from what is already in memory: no network round trip (no JWKS refetch). Public routes
   * use it, so an anonymous caller can never make the service wait on a key provider.
   */
  readonly offline?: boolean | undefined;
  /** Explain: decide as usual but report no use (the bootstrap token's metric and audit counters). */
  readonly quiet?: boolean | undefined;
  /**
   * The token's SHA-256 (hex, `hashSecret`), computed once by the chain: the service-token index,
   * the JWT cache and the bootstrap comparison all key on it, and hashing a 300-character JWT three
   * times was the largest cost of a cached-JWT Check. A kind called alone hashes the token itself.
   */
  readonly digest?: string | undefined;
}

/** One identity kind (bootstrap token, service token, JWT). Must never throw for bad input. */
export interface Authenticator {
  readonly name: string;
  authenticate(token: string, nowMs: number, opts?: AuthnOptions): AuthnResult | Promise<AuthnResult>;
}
