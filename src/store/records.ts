import { hash, randomBytes } from 'node:crypto';

/** A stored service token. The secret itself is never stored: only its SHA-256 hex. */
export interface TokenRecord {
  readonly id: string;
  readonly secretHash: string;
  readonly scopes: readonly string[];
  readonly workspaces: readonly string[];
  readonly issuedAt: number;
  readonly expiresAt?: number | undefined;
  readonly revokedAt?: number | undefined;
  readonly revocationReason?: string | undefined;
  readonly rotatedTo?: string | undefined;
  readonly lastUsedAt?: number | undefined;
  readonly useCount: number;
  readonly createdBy?: string | undefined;
  readonly updatedAt: number;
}

export type TokenStatus = 'Active' | 'Expired' | 'Revoked' | 'Rotated';

export function tokenStatus(r: TokenRecord, nowMs: number): TokenStatus {
  if (r.revokedAt !== undefined) return 'Revoked';
  if (r.rotatedTo !== undefined) return 'Rotated';
  if (r.expiresAt !== undefined && r.expiresAt <= nowMs) return 'Expired';
  return 'Active';
}

/**
 * SHA-256 hex of a presented secret. Deliberately not memoised: a cache would keep the last
 * bearer token in the heap (and heap dumps must hold no token); one hash costs well under 1 µs.
 */
export function hashSecret(secret: string): string {
  return hash('sha256', secret, 'hex');
}

/** 256 bits from the CSPRNG, URL-safe (base64url, 43 characters). */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export const TOKEN_COLUMNS =
  'id, secret_hash, scopes, workspaces, issued_at, expires_at, revoked_at, revocation_reason, rotated_to, last_used_at, use_count, created_by, updated_at';

const ms = (v: unknown): number | undefined => (v === null || v === undefined ? undefined : new Date(v as string | Date).getTime());

export function rowToRecord(row: Record<string, unknown>): TokenRecord {
  return Object.freeze({
    id: String(row.id),
    secretHash: String(row.secret_hash).trim(),
    scopes: Object.freeze([...((row.scopes as string[] | null) ?? [])]),
    workspaces: Object.freeze([...((row.workspaces as string[] | null) ?? [])]),
    issuedAt: ms(row.issued_at)!,
    expiresAt: ms(row.expires_at),
    revokedAt: ms(row.revoked_at),
    revocationReason: (row.revocation_reason as string | null) ?? undefined,
    rotatedTo: (row.rotated_to as string | null) ?? undefined,
    lastUsedAt: ms(row.last_used_at),
    useCount: Number(row.use_count ?? 0),
    createdBy: (row.created_by as string | null) ?? undefined,
    updatedAt: ms(row.updated_at)!,
  });
}
