import { timingSafeEqual } from 'node:crypto';
import type { Logger } from 'pino';
import { plainDeny } from '../errors/deny';
import { ALL_WORKSPACES } from '../authz/scopes';
import type { BootstrapConfig } from '../config/types';
import { hashSecret } from '../store/records';
import type { Authenticator, AuthnOptions, AuthnResult, Identity } from './types';

/** The token's SHA-256 as bytes; inside the chain the token was hashed once already (AuthnOptions.digest). */
const digest = (s: string, given?: string): Buffer => Buffer.from(given ?? hashSecret(s), 'hex');

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
  const identified: AuthnResult = Object.freeze({ kind: 'identified', identity } as const);
  return {
    name: 'bootstrap',
    authenticate(token: string, nowMs: number, opts?: AuthnOptions): AuthnResult {
      if (!timingSafeEqual(digest(token, opts?.digest), expected)) return { kind: 'skip' };
      const use = opts?.quiet ? undefined : onUse;
      if (cfg.expiresAt !== undefined && nowMs >= cfg.expiresAt) {
        use?.(false);
        return { kind: 'rejected', error: plainDeny('auth.token_expired'), identityKey: 'bootstrap' };
      }
      use?.(true);
      return identified;
    },
  };
}

export interface BootstrapUseLog {
  onUse(ok: boolean): void;
  /** Logs the uses counted since the last line (no line when there were none). */
  flush(): void;
  /** Stops the timer and flushes. */
  stop(): void;
}

/**
 * Bootstrap uses as log lines: the first use at once (an operator grepping for it should not wait),
 * then one warning per interval with the counts, as the audit trail batches them. A warning per use
 * flooded the log and cost every bootstrap Check a log line.
 */
export function bootstrapUseLog(logger: Logger, intervalMs: number): BootstrapUseLog {
  let accepted = 0;
  let rejected = 0;
  let first = true;
  const flush = (): void => {
    if (accepted + rejected === 0) return;
    logger.warn({ accepted, rejected, interval_s: intervalMs / 1000 }, 'bootstrap token used');
    accepted = 0;
    rejected = 0;
  };
  const timer = setInterval(flush, intervalMs);
  timer.unref();
  return {
    onUse(ok: boolean): void {
      if (ok) accepted++;
      else rejected++;
      if (first) {
        first = false;
        flush();
      }
    },
    flush,
    stop(): void {
      clearInterval(timer);
      flush();
    },
  };
}
