import { timingSafeEqual } from 'node:crypto';
import { AuthError } from '../errors/deny';
import { ALL_WORKSPACES } from '../authz/scopes';
import type { BootstrapConfig } from '../config/types';
import { hashSecret } from '../store/records';
import type { Authenticator, AuthnOptions, AuthnResult, Identity } from './types';

const digest = (s: string): Buffer => Buffer.from(hashSecret(s), 'hex');

/**
 * The bootstrap token from the environment: full (configurable) scopes, every workspace, optional
 * expiry. Compared in constant time over SHA-256 digests, so neither content nor length leaks.
 */
export function createBootstrapAuthenticator(cfg: BootstrapConfig, onUse?: (ok: boolean) => void): Authenticator {
  const expected = digest(cfg.token);
  const identity: Identity = Object.freeze({
    authenticated: true,
    type: 'service',
    subject: 'bootstrap',
    tokenId: 'bootstrap',
    scopes: new Set(cfg.scopes),
    workspaces: new Set([ALL_WORKSPACES]),
    source: 'bootstrap',
    expiresAt: cfg.expiresAt,
  });
  return {
    name: 'bootstrap',
    authenticate(token: string, nowMs: number, opts?: AuthnOptions): AuthnResult {
      if (!timingSafeEqual(digest(token), expected)) return { kind: 'skip' };
      const use = opts?.quiet ? undefined : onUse;
      if (cfg.expiresAt !== undefined && nowMs >= cfg.expiresAt) {
        use?.(false);
        return { kind: 'rejected', error: new AuthError('auth.token_expired'), identityKey: 'bootstrap' };
      }
      use?.(true);
      return { kind: 'identified', identity };
    },
  };
}
