import type { AuditRow } from '../store/audit';
import { tokenStatus, type TokenRecord, type TokenStatus } from '../store/records';

/** A token as the admin API shows it. Never carries the secret or its hash. */
export interface TokenView {
  readonly id: string;
  readonly status: TokenStatus;
  readonly scopes: readonly string[];
  readonly workspaces: readonly string[];
  readonly issued_at: string;
  readonly expires_at: string | null;
  readonly revoked_at: string | null;
  readonly revocation_reason: string | null;
  readonly rotated_to: string | null;
  /** The most recent superseded secret of this name (`<id>~rN`), when it was rotated. */
  readonly rotated_from: string | null;
  readonly last_used_at: string | null;
  readonly use_count: number;
  readonly created_by: string | null;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

export function tokenView(r: TokenRecord, nowMs: number, rotatedFrom?: string): TokenView {
  return {
    id: r.id,
    status: tokenStatus(r, nowMs),
    scopes: [...r.scopes],
    workspaces: [...r.workspaces],
    issued_at: new Date(r.issuedAt).toISOString(),
    expires_at: iso(r.expiresAt),
    revoked_at: iso(r.revokedAt),
    revocation_reason: r.revocationReason ?? null,
    rotated_to: r.rotatedTo ?? null,
    rotated_from: rotatedFrom ?? null,
    last_used_at: iso(r.lastUsedAt),
    use_count: r.useCount,
    created_by: r.createdBy ?? null,
  };
}

export function auditView(e: AuditRow): Record<string, unknown> {
  return {
    id: e.id,
    occurred_at: new Date(e.occurredAt).toISOString(),
    event: e.event,
    token_id: e.tokenId ?? null,
    actor: e.actor ?? null,
    client_ip: e.clientIp ?? null,
    user_agent: e.userAgent ?? null,
    reason: e.reason ?? null,
    count: e.count,
    details: e.details ?? null,
  };
}
