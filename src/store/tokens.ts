import { ApiError } from '../errors/api';
import type { Queryable } from './db';
import { generateSecret, hashSecret, rowToRecord, TOKEN_COLUMNS, tokenStatus, type TokenRecord, type TokenStatus } from './records';

export interface NewToken {
  readonly id: string;
  readonly scopes: readonly string[];
  readonly workspaces: readonly string[];
  readonly expiresAt?: number | undefined;
  readonly createdBy?: string | undefined;
  /** Epoch ms; defaults to the database's now(). */
  readonly issuedAt?: number | undefined;
}

/**
 * Ids an operator may choose: 1–128 of letters, digits, `.`, `_`, `-`, `:`, starting with a letter or
 * digit. `~` is reserved for the ids rotation gives to superseded secrets (`<id>~r<N>`), so they can
 * never collide with a chosen id; `audit` is reserved by the admin API's path layout,
 * `bootstrap` because the bootstrap identity already uses that token id (audit rows, headers).
 */
export const TOKEN_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const ARCHIVED_ID_PATTERN = /^([A-Za-z0-9][A-Za-z0-9._:-]{0,127})~r([1-9][0-9]{0,8})$/;
export const RESERVED_TOKEN_IDS: ReadonlySet<string> = new Set(['audit', 'bootstrap']);
export const ROTATED_SUFFIX = '~r';

export function isValidNewTokenId(id: string): boolean {
  return TOKEN_ID_PATTERN.test(id) && !RESERVED_TOKEN_IDS.has(id);
}

/** Any id a stored token can have: a chosen id or a rotated predecessor's `<id>~r<N>`. */
export function isValidStoredTokenId(id: string): boolean {
  return TOKEN_ID_PATTERN.test(id) || ARCHIVED_ID_PATTERN.test(id);
}

/** `my-token~r2` → `{ base: 'my-token', generation: 2 }`; a chosen id → undefined. */
export function parseArchivedId(id: string): { base: string; generation: number } | undefined {
  const m = ARCHIVED_ID_PATTERN.exec(id);
  return m ? { base: m[1]!, generation: Number(m[2]) } : undefined;
}

export class DuplicateTokenError extends ApiError {
  constructor(id: string) {
    super('token.duplicate', `A service token with id ${JSON.stringify(id)} already exists`);
  }
}

export class TokenNotFoundError extends ApiError {
  constructor(id: string) {
    super('token.not_found', `Service token ${JSON.stringify(id)} not found`);
  }
}

/** The token exists but its state forbids the operation (rotate a revoked token, revoke twice). */
export class TokenStateError extends ApiError {
  constructor(code: 'token.not_active' | 'token.already_revoked', message: string) {
    super(code, message);
  }
}

const UNIQUE_VIOLATION = '23505';

const ts = (ms: number | undefined): Date | null => (ms === undefined ? null : new Date(ms));

/**
 * Serialises every write to one token id (and its rotation lineage) across replicas: a concurrent
 * rotate or revoke of the same id waits, then sees the committed result in a fresh snapshot.
 */
async function lockId(q: Queryable, id: string): Promise<void> {
  await q.query(`SELECT pg_advisory_xact_lock(hashtext('orcheo-authz:token:' || current_schema() || ':' || $1))`, [id]);
}

/**
 * The database's clock inside a write transaction. Issue, expiry, revocation and overlap instants
 * are taken from it, never from the replica's clock: a replica running fast would otherwise write
 * a `revoked_at` in the future, and the token would stay valid everywhere else.
 */
export async function transactionNow(q: Queryable): Promise<number> {
  const rows = await q.query(`SELECT now() AS now`);
  return new Date(rows[0]!.now as string | Date).getTime();
}

/**
 * Inserts a token and returns its record with the secret, which exists only in this return value:
 * the database keeps its SHA-256.
 */
export async function insertToken(q: Queryable, t: NewToken): Promise<{ record: TokenRecord; secret: string }> {
  const secret = generateSecret();
  try {
    const rows = await q.query(
      `INSERT INTO service_tokens (id, secret_hash, scopes, workspaces, expires_at, created_by, issued_at)
       VALUES ($1, $2, $3, $4, $5, $6, COALESCE($7, now())) RETURNING ${TOKEN_COLUMNS}`,
      [t.id, hashSecret(secret), [...t.scopes], [...t.workspaces], ts(t.expiresAt), t.createdBy ?? null, ts(t.issuedAt)],
    );
    return { record: rowToRecord(rows[0]!), secret };
  } catch (err) {
    if ((err as { code?: string }).code === UNIQUE_VIOLATION) throw new DuplicateTokenError(t.id);
    throw err;
  }
}

export async function getToken(q: Queryable, id: string): Promise<TokenRecord | undefined> {
  const rows = await q.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens WHERE id = $1`, [id]);
  return rows[0] ? rowToRecord(rows[0]) : undefined;
}

export interface TokenFilter {
  /** Keep tokens whose status (at `nowMs`) is one of these. */
  readonly statuses?: readonly TokenStatus[] | undefined;
  /** Keep tokens that hold this scope. */
  readonly scope?: string | undefined;
  /** Keep tokens that hold this workspace (or `*`). */
  readonly workspace?: string | undefined;
  readonly nowMs?: number | undefined;
}

export async function listTokens(q: Queryable, f: TokenFilter = {}): Promise<TokenRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (f.scope !== undefined) {
    params.push(f.scope);
    where.push(`$${params.length} = ANY(scopes)`);
  }
  if (f.workspace !== undefined) {
    params.push(f.workspace);
    where.push(`($${params.length} = ANY(workspaces) OR '*' = ANY(workspaces))`);
  }
  const rows = await q.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY issued_at, id`, params);
  const records = rows.map(rowToRecord);
  if (!f.statuses || f.statuses.length === 0) return records;
  const now = f.nowMs ?? Date.now();
  const keep = new Set(f.statuses);
  return records.filter((r) => keep.has(tokenStatus(r, now)));
}

/** Ids of the superseded secrets of `id` (`id~r1`, `id~r2`, …), newest first. */
export async function predecessorIds(q: Queryable, id: string): Promise<string[]> {
  const rows = await q.query<{ id: string }>(`SELECT id FROM service_tokens WHERE left(id, $2) = $1`, [`${id}${ROTATED_SUFFIX}`, id.length + ROTATED_SUFFIX.length]);
  return rows
    .map((r) => ({ id: r.id, g: parseArchivedId(r.id) }))
    .filter((x) => x.g?.base === id)
    .sort((a, b) => b.g!.generation - a.g!.generation)
    .map((x) => x.id);
}

export interface RotateInput {
  readonly id: string;
  /** Seconds the old secret stays valid (never past its own expiry); 0 ends it at once. */
  readonly overlapSeconds: number;
  /** Lifetime of the new secret in seconds; absent: the old token's lifetime, or none. */
  readonly expiresInSeconds?: number | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly workspaces?: readonly string[] | undefined;
  readonly actor?: string | undefined;
  readonly nowMs: number;
}

export interface RotateResult {
  /** The new secret's record: it keeps the id. */
  readonly record: TokenRecord;
  readonly secret: string;
  /** The old secret's record, renamed `<id>~r<N>`, status Rotated, `rotated_to` = id. */
  readonly previous: TokenRecord;
}

/**
 * Rotation keeps the name: the new secret takes over `id` (so `show`, `revoke` and the identity
 * headers keep referring to the same name), while the old secret's row is renamed `<id>~r<N>` with
 * `rotated_to = id` and an expiry of min(own expiry, now + overlap). Run inside one transaction.
 */
export async function rotateToken(q: Queryable, input: RotateInput): Promise<RotateResult> {
  await lockId(q, input.id);
  const rows = await q.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens WHERE id = $1 FOR UPDATE`, [input.id]);
  if (!rows[0]) throw new TokenNotFoundError(input.id);
  const old = rowToRecord(rows[0]);
  const status = tokenStatus(old, input.nowMs);
  if (status !== 'Active') {
    const why = status === 'Rotated' ? `was rotated to ${JSON.stringify(old.rotatedTo)}` : `is ${status.toLowerCase()}`;
    throw new TokenStateError('token.not_active', `Service token ${JSON.stringify(input.id)} ${why} and cannot be rotated`);
  }
  const generation = ((await predecessorIds(q, input.id)).map((p) => parseArchivedId(p)!.generation)[0] ?? 0) + 1;
  const archivedId = `${input.id}${ROTATED_SUFFIX}${generation}`;
  const overlapEnd = input.nowMs + input.overlapSeconds * 1000;
  const moved = await q.query(
    `UPDATE service_tokens
        SET id = $2, rotated_to = $1, expires_at = LEAST(expires_at, $3), updated_at = clock_timestamp()
      WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`,
    [input.id, archivedId, new Date(overlapEnd)],
  );
  let expiresAt: number | undefined;
  if (input.expiresInSeconds !== undefined) expiresAt = input.nowMs + input.expiresInSeconds * 1000;
  else if (old.expiresAt !== undefined) expiresAt = input.nowMs + Math.max(0, old.expiresAt - old.issuedAt);
  const { record, secret } = await insertToken(q, {
    id: input.id,
    scopes: input.scopes ?? old.scopes,
    workspaces: input.workspaces ?? old.workspaces,
    expiresAt,
    createdBy: input.actor,
    issuedAt: input.nowMs,
  });
  return { record, secret, previous: rowToRecord(moved[0]!) };
}

export interface RevokeInput {
  readonly id: string;
  readonly reason?: string | undefined;
  readonly nowMs: number;
}

/**
 * Revokes `id` and, when it names a rotation lineage, the superseded secrets still inside their
 * overlap (revoking a name must not leave its previous secret working). Returns every record it
 * revoked, `id` first. Run inside one transaction.
 */
export async function revokeToken(q: Queryable, input: RevokeInput): Promise<TokenRecord[]> {
  await lockId(q, parseArchivedId(input.id)?.base ?? input.id);
  const rows = await q.query(`SELECT ${TOKEN_COLUMNS} FROM service_tokens WHERE id = $1 FOR UPDATE`, [input.id]);
  if (!rows[0]) throw new TokenNotFoundError(input.id);
  const cur = rowToRecord(rows[0]);
  if (cur.revokedAt !== undefined) throw new TokenStateError('token.already_revoked', `Service token ${JSON.stringify(input.id)} is already revoked`);
  const at = new Date(input.nowMs);
  const reason = input.reason ?? null;
  const revoked = await q.query(
    `UPDATE service_tokens SET revoked_at = $2, revocation_reason = $3, updated_at = clock_timestamp()
      WHERE id = $1 RETURNING ${TOKEN_COLUMNS}`,
    [input.id, at, reason],
  );
  const out = [rowToRecord(revoked[0]!)];
  if (!parseArchivedId(input.id)) {
    const live = await q.query(
      `UPDATE service_tokens SET revoked_at = $3, revocation_reason = $4, updated_at = clock_timestamp()
        WHERE left(id, $2) = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $3)
        RETURNING ${TOKEN_COLUMNS}`,
      [`${input.id}${ROTATED_SUFFIX}`, input.id.length + ROTATED_SUFFIX.length, at, reason],
    );
    for (const row of live) {
      const r = rowToRecord(row);
      if (parseArchivedId(r.id)?.base === input.id) out.push(r);
    }
  }
  return out;
}
