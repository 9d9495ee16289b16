import type { Outcome } from './pipeline/decision';

/** Where a Check outcome is counted. The store's recorders only count; this decides what. */
export interface OutcomeSinks {
  /** Absent for the admin API's own authentication: `checks_total` counts Envoy's checks only. */
  readonly metrics?: { count(o: Pick<Outcome, 'decision' | 'code'>): void } | undefined;
  readonly audit: { count(event: 'auth.failure' | 'token.used', tokenId?: string, reason?: string): void };
  readonly usage: { record(tokenId: string, atMs: number): void };
  readonly now?: (() => number) | undefined;
}

/**
 * The pipeline's outcome hook: the decision counter, the audit trail's aggregated failures by code
 * (and identity when known) and service-token use, and `use_count` (allowed requests only, like
 * the audit trail's token.used).
 */
export function outcomeObserver(sinks: OutcomeSinks): (o: Outcome) => void {
  const now = sinks.now ?? Date.now;
  return (o) => {
    sinks.metrics?.count(o);
    if (o.decision === 'deny') {
      const id = o.identity;
      // Service tokens and bootstrap by token id, JWTs by subject (a jti is unique per token).
      const who = id?.authenticated ? (id.source === 'jwt' ? id.subject : id.tokenId) : undefined;
      sinks.audit.count('auth.failure', who, o.code ?? 'unknown');
    } else if (o.identity?.source === 'service_token') {
      sinks.audit.count('token.used', o.identity.tokenId);
      sinks.usage.record(o.identity.tokenId, now());
    }
  };
}
