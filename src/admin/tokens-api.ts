import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { isKnownScope, isValidWorkspaceId } from '../authz/scopes';
import type { CheckFn } from '../pipeline/decision';
import { isValidStoredTokenId, TokenNotFoundError } from '../store/tokens';
import type { TokenEntry, TokenService } from '../tokens/service';
import { authenticateAdmin, type AdminAccess, type AdminActor } from './auth';
import { readJsonBody } from './body';
import { ApiError, badRequest, SECURITY_HEADERS, sendApi, sendError } from './errors';
import { assertGrantable } from './escalation';
import { parseCreate, parseRevoke, parseRotate, parseStatuses, rejectUnknownParams } from './validate';
import { auditView, tokenView } from './views';

export const ADMIN_PREFIX = '/api/admin/service-tokens';

/** What the admin API needs: nothing of the app beyond these. */
export interface TokensApiDeps {
  /** The Check pipeline admin requests authenticate through (its calls are not Envoy's checks). */
  readonly check: CheckFn;
  readonly tokens: TokenService;
  /** The database clock as this replica knows it, for token status. */
  readonly index: { dbNow(): number };
  readonly logger: Logger;
}

const idError = (id: string): ApiError => badRequest('token.invalid_id', `Malformed token id ${JSON.stringify(id.slice(0, 64))}`);

type Op = { kind: 'list' } | { kind: 'create' } | { kind: 'audit' } | { kind: 'show'; id: string } | { kind: 'revoke'; id: string } | { kind: 'rotate'; id: string };

/** Maps method + path to an operation; throws 404/405/400 for anything else. */
function route(method: string, pathname: string): Op {
  const rest = pathname.slice(ADMIN_PREFIX.length).replace(/^\/+/, '').replace(/\/+$/, '');
  const parts = rest === '' ? [] : rest.split('/');
  const read = method === 'GET' || method === 'HEAD';
  const notAllowed = (allow: string) => new ApiError('http.method_not_allowed', `Method ${method} not allowed here`, { allow });
  if (parts.length === 0) {
    if (read) return { kind: 'list' };
    if (method === 'POST') return { kind: 'create' };
    throw notAllowed('GET, HEAD, POST');
  }
  if (parts.length > 2 || (parts.length === 2 && parts[1] !== 'rotate')) throw new ApiError('http.not_found', 'Not found');
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
  if (!isValidStoredTokenId(id)) throw idError(id);
  if (parts.length === 2) {
    if (method === 'POST') return { kind: 'rotate', id };
    throw notAllowed('POST');
  }
  if (read) return { kind: 'show', id };
  if (method === 'DELETE') return { kind: 'revoke', id };
  throw notAllowed('GET, HEAD, DELETE');
}

/**
 * The admin API for service tokens: routing, validation and the HTTP form of the answers. Every
 * request is authenticated by the Check pipeline first (see auth.ts); the writes are the token
 * service's (one transaction each).
 */
export function createTokensApi(deps: TokensApiDeps) {
  const { tokens, index, logger } = deps;
  const view = (e: TokenEntry, now = index.dbNow()) => tokenView(e.record, now, e.rotatedFrom);

  async function list(url: URL): Promise<unknown> {
    const q = url.searchParams;
    rejectUnknownParams(q, ['status', 'scope', 'workspace']);
    const statuses = parseStatuses(q.getAll('status'));
    const scope = q.get('scope') ?? undefined;
    if (scope !== undefined && !isKnownScope(scope)) throw badRequest('token.invalid_scope', `Unknown scope ${JSON.stringify(scope.slice(0, 64))}`);
    const workspace = q.get('workspace') ?? undefined;
    if (workspace !== undefined && !isValidWorkspaceId(workspace)) throw badRequest('token.invalid_workspace', `Malformed workspace id ${JSON.stringify(workspace.slice(0, 64))}`);
    const now = index.dbNow();
    const entries = await tokens.list({ statuses, scope, workspace, nowMs: now });
    return { tokens: entries.map((e) => view(e, now)) };
  }

  async function show(id: string): Promise<unknown> {
    const e = await tokens.get(id);
    if (!e) throw new TokenNotFoundError(id);
    return view(e);
  }

  async function create(req: IncomingMessage, actor: AdminActor): Promise<unknown> {
    const input = parseCreate(await readJsonBody(req));
    assertGrantable(actor, input.scopes, input.workspaces);
    const { record, secret } = await tokens.create(input, actor);
    return { ...tokenView(record, index.dbNow()), secret };
  }

  async function rotate(req: IncomingMessage, id: string, actor: AdminActor): Promise<unknown> {
    const input = parseRotate(await readJsonBody(req));
    // Rotation without scopes/workspaces keeps the token's own: those must be grantable too.
    const current = input.scopes && input.workspaces ? undefined : (await tokens.get(id))?.record;
    if ((!input.scopes || !input.workspaces) && !current) throw new TokenNotFoundError(id);
    assertGrantable(actor, input.scopes ?? current?.scopes ?? [], input.workspaces ?? current?.workspaces ?? []);
    const out = await tokens.rotate(id, input, actor);
    const t = index.dbNow();
    return { ...tokenView(out.record, t, out.previous.id), secret: out.secret, previous: tokenView(out.previous, t) };
  }

  async function revoke(req: IncomingMessage, url: URL, id: string, actor: AdminActor): Promise<unknown> {
    rejectUnknownParams(url.searchParams, ['reason']);
    const { reason } = parseRevoke(await readJsonBody(req), url.searchParams);
    const records = await tokens.revoke(id, reason, actor);
    // The same `rotated_from` as `show`, so `revoke --json` and `show --json` describe one token alike.
    const rotatedFrom = (await tokens.get(id))?.rotatedFrom;
    return { ...tokenView(records[0]!, index.dbNow(), rotatedFrom), also_revoked: records.slice(1).map((r) => r.id) };
  }

  async function audit(url: URL): Promise<unknown> {
    const q = url.searchParams;
    rejectUnknownParams(q, ['id', 'event', 'limit', 'before']);
    const id = q.get('id') ?? undefined;
    if (id !== undefined && !isValidStoredTokenId(id) && id !== 'bootstrap') throw idError(id);
    const num = (name: 'limit' | 'before', min: number, max: number): number | undefined => {
      const v = q.get(name);
      if (v === null) return undefined;
      if (!/^\d{1,12}$/.test(v) || Number(v) < min || Number(v) > max) throw badRequest(name === 'limit' ? 'request.invalid_limit' : 'request.invalid_before', `${name} must be a whole number between ${min} and ${max}`);
      return Number(v);
    };
    const event = q.get('event') ?? undefined;
    if (event !== undefined && !/^[a-z_.]{1,64}$/.test(event)) throw badRequest('request.invalid_event', 'Malformed event name');
    const rows = await tokens.audit({ tokenId: id, event, limit: num('limit', 1, 1000) ?? 100, beforeId: num('before', 1, Number.MAX_SAFE_INTEGER) });
    return { events: rows.map(auditView) };
  }

  async function dispatch(req: IncomingMessage, url: URL, method: string, actor: AdminActor): Promise<[number, unknown]> {
    const op = route(method, url.pathname);
    if (op.kind !== 'list' && op.kind !== 'audit' && op.kind !== 'revoke') rejectUnknownParams(url.searchParams, []);
    switch (op.kind) {
      case 'list':
        return [200, await list(url)];
      case 'show':
        return [200, await show(op.id)];
      case 'audit':
        return [200, await audit(url)];
      case 'create':
        return [201, await create(req, actor)];
      case 'rotate':
        return [200, await rotate(req, op.id, actor)];
      case 'revoke':
        return [200, await revoke(req, url, op.id, actor)];
    }
  }

  return async function handle(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const access: AdminAccess = method === 'GET' || method === 'HEAD' ? 'read' : 'write';
    const auth = await authenticateAdmin(deps.check, req, access);
    if (!auth.ok) {
      const { 'content-length': _drop, ...headers } = auth.headers;
      void _drop;
      res.writeHead(auth.status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(auth.body), ...SECURITY_HEADERS });
      res.end(auth.body);
      return;
    }
    try {
      const [status, body] = await dispatch(req, url, method, auth.actor);
      sendApi(res, status, body);
    } catch (err) {
      sendError(res, err, logger, { op: method, path: url.pathname });
    }
  };
}
