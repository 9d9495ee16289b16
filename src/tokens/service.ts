import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { insertAuditEvents, listAuditEvents, type AuditEvent, type AuditQuery, type AuditRow } from '../store/audit';
import type { Db, Queryable } from '../store/db';
import { notifyTokenChange } from '../store/notify';
import type { TokenRecord } from '../store/records';
import { getToken, insertToken, listTokens, parseArchivedId, predecessorIds, revokeToken, rotateToken, transactionNow, type TokenFilter } from '../store/tokens';

/** Who asked for a change, for the audit row. Never holds a credential. */
export interface TokenActor {
  readonly subject: string;
  readonly type: string;
  readonly clientIp?: string | undefined;
  readonly userAgent?: string | undefined;
  readonly forwardedFor?: string | undefined;
}

export interface CreateInput {
  readonly id?: string | undefined;
  readonly scopes: readonly string[];
  readonly workspaces: readonly string[];
  readonly expiresIn?: number | undefined;
}

export interface RotateOptions {
  readonly overlap: number;
  readonly expiresIn?: number | undefined;
  readonly scopes?: readonly string[] | undefined;
  readonly workspaces?: readonly string[] | undefined;
}

/** A record with the newest superseded secret of its name (`<id>~rN`), when there is one. */
export interface TokenEntry {
  readonly record: TokenRecord;
  readonly rotatedFrom: string | undefined;
}

export interface TokenServiceDeps {
  readonly db: Db;
  /** This replica's index: updated as soon as a write commits, before the NOTIFY comes back. */
  readonly index: { apply(record: TokenRecord): void };
  readonly logger: Logger;
  /**
   * The instant of a write, read inside its transaction. The database's clock by default: a
   * replica running fast must not write a `revoked_at` in the future (see transactionNow).
   */
  readonly clock?: ((tx: Queryable) => Promise<number>) | undefined;
  /** Id of a token created without one. */
  readonly newId?: (() => string) | undefined;
}

export type TokenService = ReturnType<typeof createTokenService>;

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

function auditBase(actor: TokenActor, at: number): Pick<AuditEvent, 'actor' | 'clientIp' | 'userAgent' | 'at'> {
  return { actor: actor.subject, clientIp: actor.clientIp, userAgent: actor.userAgent, at };
}

function actorDetails(actor: TokenActor): Record<string, unknown> {
  return { actor_type: actor.type, ...(actor.forwardedFor ? { forwarded_for: actor.forwardedFor.slice(0, 256) } : {}) };
}

interface WriteResult<T> {
  readonly result: T;
  readonly events: readonly AuditEvent[];
  /** Every row the write changed, in the order the index must take them. */
  readonly changed: readonly TokenRecord[];
}

/**
 * Create, rotate and revoke service tokens. Each write is ONE transaction holding the change, its
 * audit row and the NOTIFY that carries it to the other replicas; it commits fully or not at all,
 * and this replica's index takes the rows once it has committed.
 */
export function createTokenService(deps: TokenServiceDeps) {
  const { db, index, logger } = deps;
  const clock = deps.clock ?? transactionNow;
  const newId = deps.newId ?? (() => `token-${randomBytes(8).toString('hex')}`);

  async function write<T>(fn: (tx: Queryable, now: number) => Promise<WriteResult<T>>): Promise<T> {
    const out = await db.transaction(async (tx) => {
      const w = await fn(tx, await clock(tx));
      await insertAuditEvents(tx, w.events);
      await notifyTokenChange(tx, w.changed.map((r) => r.id));
      return w;
    });
    // All rows in one tick: during a rotation the old secret is never missing from the index.
    for (const r of out.changed) index.apply(r);
    return out.result;
  }

  async function create(input: CreateInput, actor: TokenActor): Promise<{ record: TokenRecord; secret: string }> {
    const id = input.id ?? newId();
    const out = await write(async (tx, now) => {
      const expiresAt = input.expiresIn === undefined ? undefined : now + input.expiresIn * 1000;
      const created = await insertToken(tx, { id, scopes: input.scopes, workspaces: input.workspaces, expiresAt, createdBy: actor.subject, issuedAt: now });
      const details = { scopes: created.record.scopes, workspaces: created.record.workspaces, expires_at: iso(expiresAt), ...actorDetails(actor) };
      return { result: created, events: [{ event: 'token.created', tokenId: id, ...auditBase(actor, now), details }], changed: [created.record] };
    });
    logger.info({ op: 'token.created', id, actor: actor.subject, scopes: out.record.scopes, workspaces: out.record.workspaces }, 'service token created');
    return out;
  }

  async function rotate(id: string, input: RotateOptions, actor: TokenActor) {
    const out = await write(async (tx, now) => {
      const r = await rotateToken(tx, { id, overlapSeconds: input.overlap, expiresInSeconds: input.expiresIn, scopes: input.scopes, workspaces: input.workspaces, actor: actor.subject, nowMs: now });
      const details = {
        previous_id: r.previous.id,
        overlap_seconds: input.overlap,
        previous_expires_at: iso(r.previous.expiresAt),
        expires_at: iso(r.record.expiresAt),
        scopes: r.record.scopes,
        workspaces: r.record.workspaces,
        ...actorDetails(actor),
      };
      return { result: r, events: [{ event: 'token.rotated', tokenId: id, ...auditBase(actor, now), details }], changed: [r.previous, r.record] };
    });
    logger.info({ op: 'token.rotated', id, previous: out.previous.id, overlap_seconds: input.overlap, actor: actor.subject }, 'service token rotated');
    return out;
  }

  /** Revokes `id` and the superseded secrets still in overlap; returns every revoked record, `id` first. */
  async function revoke(id: string, reason: string | undefined, actor: TokenActor): Promise<TokenRecord[]> {
    const records = await write(async (tx, now) => {
      const rs = await revokeToken(tx, { id, reason, nowMs: now });
      const events: AuditEvent[] = rs.map((r) => ({ event: 'token.revoked', tokenId: r.id, ...auditBase(actor, now), reason, details: { ...(r.id === id ? {} : { via: id }), ...actorDetails(actor) } }));
      return { result: rs, events, changed: rs };
    });
    logger.info({ op: 'token.revoked', id, also: records.slice(1).map((r) => r.id), actor: actor.subject }, 'service token revoked');
    return records;
  }

  async function rotatedFrom(id: string): Promise<string | undefined> {
    return parseArchivedId(id) ? undefined : (await predecessorIds(db, id))[0];
  }

  async function get(id: string): Promise<TokenEntry | undefined> {
    const record = await getToken(db, id);
    return record && { record, rotatedFrom: await rotatedFrom(id) };
  }

  async function list(filter: TokenFilter): Promise<TokenEntry[]> {
    const records = await listTokens(db, filter);
    const filtered = filter.statuses !== undefined || filter.scope !== undefined || filter.workspace !== undefined;
    // The newest superseded secret of each name, from every token (a filter may hide it).
    const newest = new Map<string, { id: string; g: number }>();
    for (const { id } of filtered ? await listTokens(db) : records) {
      const a = parseArchivedId(id);
      if (a && (newest.get(a.base)?.g ?? 0) < a.generation) newest.set(a.base, { id, g: a.generation });
    }
    return records.map((record) => ({ record, rotatedFrom: parseArchivedId(record.id) ? undefined : newest.get(record.id)?.id }));
  }

  function audit(query: AuditQuery): Promise<AuditRow[]> {
    return listAuditEvents(db, query);
  }

  return { create, rotate, revoke, get, list, audit };
}
