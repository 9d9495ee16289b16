import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { App } from '../app';
import { isKnownScope, isValidWorkspaceId } from '../authz/scopes';
import { StoreUnavailableError } from '../store/db';
import { insertAuditEvents, listAuditEvents, type AuditEvent } from '../store/audit';
import { notifyTokenChange } from '../store/notify';
import {
  DuplicateTokenError,
  getToken,
  insertToken,
  isValidStoredTokenId,
  listTokens,
  parseArchivedId,
  predecessorIds,
  revokeToken,
  rotateToken,
  TokenNotFoundError,
  TokenStateError,
  transactionNow,
} from '../store/tokens';
import { authenticateAdmin, type AdminAccess, type AdminActor } from './auth';
import { readJsonBody } from './body';
import { ApiError, badRequest } from './errors';
import { assertGrantable } from './escalation';
import { sendJson } from './http-server';
import { parseCreate, parseRevoke, parseRotate, parseStatuses, rejectUnknownParams } from './validate';
import { auditView, tokenView } from './views';

export const ADMIN_PREFIX = '/api/admin/service-tokens';

/** Sent on every admin API response: secrets must not be cached, sniffed or framed. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
});

const STORE_RETRY_AFTER = '5';

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, { ...headers, ...SECURITY_HEADERS });
}

/**
 * Database trouble (connection refused or lost, timeout, shutdown, overload, serialisation) rather
 * than a bug: SQLSTATE classes 08/40/53/57/58, and the plain errors node-postgres raises for
 * connection problems. Programming errors (TypeError…, other SQLSTATEs) stay 500s.
 */
function isStoreFailure(err: unknown): boolean {
  if (err instanceof StoreUnavailableError) return true;
  if (err instanceof TypeError || err instanceof RangeError || err instanceof ReferenceError || err instanceof SyntaxError) return false;
  const code = typeof (err as { code?: unknown })?.code === 'string' ? (err as { code: string }).code : undefined;
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return /^(08|40|53|57|58)/.test(code);
  return err instanceof Error;
}

type Op = { kind: 'list' } | { kind: 'create' } | { kind: 'audit' } | { kind: 'show'; id: string } | { kind: 'revoke'; id: string } | { kind: 'rotate'; id: string };

/** Maps method + path to an operation; throws 404/405/400 for anything else. */
function route(method: string, pathname: string): Op {
  const rest = pathname.slice(ADMIN_PREFIX.length).replace(/^\/+/, '').replace(/\/+$/, '');
  const parts = rest === '' ? [] : rest.split('/');
  const read = method === 'GET' || method === 'HEAD';
  const notAllowed = (allow: string) => new ApiError(405, 'http.method_not_allowed', `Method ${method} not allowed here`, { allow });
  if (parts.length === 0) {
    if (read) return { kind: 'list' };
    if (method === 'POST') return { kind: 'create' };
    throw notAllowed('GET, HEAD, POST');
  }
  if (parts.length > 2 || (parts.length === 2 && parts[1] !== 'rotate')) throw new ApiError(404, 'http.not_found', 'Not found');
  let id: string;
  try {
    id = decodeURIComponent(parts[0]!);
  } catch {
    throw badRequest('token.invalid_id', 'Malformed token id (bad percent-encoding)');
  }
  if (parts.length === 1 && id === 'audit') {
    if (read) return { kind: 'audit' };
    throw notAllowed('GET, HEAD');
  }
  if (!isValidStoredTokenId(id)) throw badRequest('token.invalid_id', `Malformed token id ${JSON.stringify(id.slice(0, 64))}`);
  if (parts.length === 2) {
    if (method === 'POST') return { kind: 'rotate', id };
    throw notAllowed('POST');
  }
  if (read) return { kind: 'show', id };
  if (method === 'DELETE') return { kind: 'revoke', id };
  throw notAllowed('GET, HEAD, DELETE');
}

function auditBase(actor: AdminActor): Pick<AuditEvent, 'actor' | 'clientIp' | 'userAgent'> {
  return { actor: actor.subject, clientIp: actor.clientIp, userAgent: actor.userAgent };
}

function actorDetails(actor: AdminActor): Record<string, unknown> {
  return { actor_type: actor.type, ...(actor.forwardedFor ? { forwarded_for: actor.forwardedFor.slice(0, 256) } : {}) };
}

/**
 * The admin API for service tokens. Every request is authenticated by the Check pipeline first
 * (see auth.ts); every write is one transaction holding the change, its audit row and the NOTIFY
 * that carries it to the other replicas; this instance's index is updated as soon as it commits.
 */
export function createTokensApi(app: App) {
  const { db, index, logger } = app;

  async function list(url: URL): Promise<unknown> {
    const q = url.searchParams;
    rejectUnknownParams(q, ['status', 'scope', 'workspace']);
    const statuses = parseStatuses(q.getAll('status'));
    const scope = q.get('scope') ?? undefined;
    if (scope !== undefined && !isKnownScope(scope)) throw badRequest('token.invalid_scope', `Unknown scope ${JSON.stringify(scope.slice(0, 64))}`);
    const workspace = q.get('workspace') ?? undefined;
    if (workspace !== undefined && !isValidWorkspaceId(workspace)) throw badRequest('token.invalid_workspace', `Malformed workspace id ${JSON.stringify(workspace.slice(0, 64))}`);
    const now = index.dbNow();
    const all = await listTokens(db, { statuses, scope, workspace, nowMs: now });
    // The newest superseded secret of each name, for `rotated_from`.
    const newest = new Map<string, { id: string; g: number }>();
    for (const id of statuses || scope || workspace ? (await listTokens(db)).map((r) => r.id) : all.map((r) => r.id)) {
      const a = parseArchivedId(id);
      if (a && (newest.get(a.base)?.g ?? 0) < a.generation) newest.set(a.base, { id, g: a.generation });
    }
    return { tokens: all.map((r) => tokenView(r, now, parseArchivedId(r.id) ? undefined : newest.get(r.id)?.id)) };
  }

  async function show(id: string): Promise<unknown> {
    const r = await getToken(db, id);
    if (!r) throw new TokenNotFoundError(id);
    const prev = parseArchivedId(id) ? [] : await predecessorIds(db, id);
    return tokenView(r, index.dbNow(), prev[0]);
  }

  async function create(req: IncomingMessage, actor: AdminActor): Promise<unknown> {
    const input = parseCreate(await readJsonBody(req));
    assertGrantable(actor, input.scopes, input.workspaces);
    const id = input.id ?? `token-${randomBytes(8).toString('hex')}`;
    const { record, secret } = await db.transaction(async (tx) => {
      const now = await transactionNow(tx);
      const expiresAt = input.expiresIn === undefined ? undefined : now + input.expiresIn * 1000;
      const out = await insertToken(tx, { id, scopes: input.scopes, workspaces: input.workspaces, expiresAt, createdBy: actor.subject, issuedAt: now });
      await insertAuditEvents(tx, [
        {
          event: 'token.created',
          tokenId: id,
          ...auditBase(actor),
          details: { scopes: input.scopes, workspaces: input.workspaces, expires_at: expiresAt === undefined ? null : new Date(expiresAt).toISOString(), ...actorDetails(actor) },
        },
      ]);
      await notifyTokenChange(tx, [id]);
      return out;
    });
    index.apply(record);
    logger.info({ op: 'token.created', id, actor: actor.subject, scopes: record.scopes, workspaces: record.workspaces }, 'service token created');
    return { ...tokenView(record, index.dbNow()), secret };
  }

  async function rotate(req: IncomingMessage, id: string, actor: AdminActor): Promise<unknown> {
    const input = parseRotate(await readJsonBody(req));
    // Rotation without scopes/workspaces keeps the token's own: those must be grantable too.
    const current = input.scopes && input.workspaces ? undefined : await getToken(db, id);
    if (!input.scopes || !input.workspaces) {
      if (!current) throw new TokenNotFoundError(id);
    }
    assertGrantable(actor, input.scopes ?? current?.scopes ?? [], input.workspaces ?? current?.workspaces ?? []);
    const out = await db.transaction(async (tx) => {
      const now = await transactionNow(tx);
      const r = await rotateToken(tx, { id, overlapSeconds: input.overlap, expiresInSeconds: input.expiresIn, scopes: input.scopes, workspaces: input.workspaces, actor: actor.subject, nowMs: now });
      await insertAuditEvents(tx, [
        {
          event: 'token.rotated',
          tokenId: id,
          ...auditBase(actor),
          details: {
            previous_id: r.previous.id,
            overlap_seconds: input.overlap,
            previous_expires_at: r.previous.expiresAt === undefined ? null : new Date(r.previous.expiresAt).toISOString(),
            expires_at: r.record.expiresAt === undefined ? null : new Date(r.record.expiresAt).toISOString(),
            scopes: r.record.scopes,
            workspaces: r.record.workspaces,
            ...actorDetails(actor),
          },
        },
      ]);
      await notifyTokenChange(tx, [id, r.previous.id]);
      return r;
    });
    // Both rows in one tick: the old secret is never missing from the index.
    index.apply(out.previous);
    index.apply(out.record);
    logger.info({ op: 'token.rotated', id, previous: out.previous.id, overlap_seconds: input.overlap, actor: actor.subject }, 'service token rotated');
    const t = index.dbNow();
    return { ...tokenView(out.record, t, out.previous.id), secret: out.secret, previous: tokenView(out.previous, t) };
  }

  async function revoke(req: IncomingMessage, url: URL, id: string, actor: AdminActor): Promise<unknown> {
    rejectUnknownParams(url.searchParams, ['reason']);
    const { reason } = parseRevoke(await readJsonBody(req), url.searchParams);
    const records = await db.transaction(async (tx) => {
      const rs = await revokeToken(tx, { id, reason, nowMs: await transactionNow(tx) });
      await insertAuditEvents(
        tx,
        rs.map((r) => ({ event: 'token.revoked' as const, tokenId: r.id, ...auditBase(actor), reason, details: { ...(r.id === id ? {} : { via: id }), ...actorDetails(actor) } })),
      );
      await notifyTokenChange(tx, rs.map((r) => r.id));
      return rs;
    });
    for (const r of records) index.apply(r);
    logger.info({ op: 'token.revoked', id, also: records.slice(1).map((r) => r.id), actor: actor.subject }, 'service token revoked');
    // The same `rotated_from` as `show`, so `revoke --json` and `show --json` describe one token alike.
    const prev = parseArchivedId(id) ? [] : await predecessorIds(db, id);
    return { ...tokenView(records[0]!, index.dbNow(), prev[0]), also_revoked: records.slice(1).map((r) => r.id) };
  }

  async function audit(url: URL): Promise<unknown> {
    const q = url.searchParams;
    rejectUnknownParams(q, ['id', 'event', 'limit', 'before']);
    const id = q.get('id') ?? undefined;
    if (id !== undefined && !isValidStoredTokenId(id) && id !== 'bootstrap') throw badRequest('token.invalid_id', `Malformed token id ${JSON.stringify(id.slice(0, 64))}`);
    const num = (name: string, min: number, max: number): number | undefined => {
      const v = q.get(name);
      if (v === null) return undefined;
      if (!/^\d{1,12}$/.test(v) || Number(v) < min || Number(v) > max) throw badRequest(`request.invalid_${name}`, `${name} must be a whole number between ${min} and ${max}`);
      return Number(v);
    };
    const event = q.get('event') ?? undefined;
    if (event !== undefined && !/^[a-z_.]{1,64}$/.test(event)) throw badRequest('request.invalid_event', 'Malformed event name');
    const rows = await listAuditEvents(db, { tokenId: id, event, limit: num('limit', 1, 1000) ?? 100, beforeId: num('before', 1, Number.MAX_SAFE_INTEGER) });
    return { events: rows.map(auditView) };
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const access: AdminAccess = method === 'GET' || method === 'HEAD' ? 'read' : 'write';
    const auth = await authenticateAdmin(app.check, req, access);
    if (!auth.ok) {
      const { 'content-length': _drop, ...headers } = auth.headers;
      void _drop;
      res.writeHead(auth.status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(auth.body), ...SECURITY_HEADERS });
      res.end(auth.body);
      return;
    }
    try {
      const op = route(method, url.pathname);
      switch (op.kind) {
        case 'list':
          return send(res, 200, await list(url));
        case 'show':
          rejectUnknownParams(url.searchParams, []);
          return send(res, 200, await show(op.id));
        case 'audit':
          return send(res, 200, await audit(url));
        case 'create':
          rejectUnknownParams(url.searchParams, []);
          return send(res, 201, await create(req, auth.actor));
        case 'rotate':
          rejectUnknownParams(url.searchParams, []);
          return send(res, 200, await rotate(req, op.id, auth.actor));
        case 'revoke':
          return send(res, 200, await revoke(req, url, op.id, auth.actor));
      }
    } catch (err) {
      if (err instanceof ApiError) return send(res, err.status, { message: err.message, code: err.code }, err.headers);
      if (err instanceof DuplicateTokenError) return send(res, 409, { message: err.message, code: err.code });
      if (err instanceof TokenNotFoundError) return send(res, 404, { message: err.message, code: err.code });
      if (err instanceof TokenStateError) return send(res, 409, { message: err.message, code: err.code });
      if (isStoreFailure(err)) {
        logger.warn({ err: (err as Error)?.message, op: method, path: url.pathname }, 'admin API: token store unavailable');
        return send(res, 503, { message: 'Token store is temporarily unavailable', code: 'store.unavailable' }, { 'retry-after': STORE_RETRY_AFTER });
      }
      logger.error({ err: (err as Error)?.message, op: method, path: url.pathname }, 'admin API request failed');
      if (!res.headersSent) return send(res, 500, { message: 'Internal error', code: 'http.internal' });
      res.destroy();
    }
  };
}
