import { splitList } from '../util/list';
import { ALL_SCOPES, isKnownScope, isValidWorkspaceId } from '../authz/scopes';
import type { TokenStatus } from '../store/records';
import { isValidNewTokenId, RESERVED_TOKEN_IDS } from '../store/tokens';
import type { ApiErrorCode } from '../errors/api';
import { badRequest } from './errors';

/** Bounds on request values; anything outside is a 400 naming the field. */
export const LIMITS = {
  minExpiresIn: 60,
  maxExpiresIn: 10 * 365 * 86400,
  maxOverlap: 365 * 86400,
  defaultOverlap: 300,
  maxListEntries: 256,
  maxReason: 500,
} as const;

export const STATUSES: readonly TokenStatus[] = ['Active', 'Expired', 'Revoked', 'Rotated'];

function rejectUnknown(body: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(body)) {
    if (!allowed.includes(k)) throw badRequest('request.unknown_field', `Unknown field ${JSON.stringify(k.slice(0, 64))} (allowed: ${allowed.join(', ')})`);
  }
}

/** The whole-number fields of the bodies and the code a bad value gets. */
const INT_FIELDS = { expires_in: 'token.invalid_expires_in', overlap: 'token.invalid_overlap' } as const satisfies Record<string, ApiErrorCode>;

function intField(body: Record<string, unknown>, name: keyof typeof INT_FIELDS, min: number, max: number, what: string): number | undefined {
  const v = body[name];
  const code = INT_FIELDS[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw badRequest(code, `${name} must be a whole number of seconds`);
  if (v < min) throw badRequest(code, `${name} must be at least ${min} seconds${what}, got ${v}`);
  if (v > max) throw badRequest(code, `${name} must be at most ${max} seconds, got ${v}`);
  return v;
}

export function parseScopes(v: unknown, field = 'scopes'): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw badRequest('token.invalid_scope', `${field} must be an array of strings`);
  if (v.length > LIMITS.maxListEntries) throw badRequest('token.invalid_scope', `too many scopes (at most ${LIMITS.maxListEntries})`);
  for (const s of v as string[]) {
    if (!isKnownScope(s)) throw badRequest('token.invalid_scope', `Unknown scope ${JSON.stringify(s.slice(0, 64))} (known: ${ALL_SCOPES.join(', ')})`);
  }
  return [...new Set(v as string[])].sort();
}

export function parseWorkspaces(v: unknown, field = 'workspaces'): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw badRequest('token.invalid_workspace', `${field} must be an array of strings`);
  if (v.length > LIMITS.maxListEntries) throw badRequest('token.invalid_workspace', `too many workspaces (at most ${LIMITS.maxListEntries})`);
  for (const w of v as string[]) {
    if (!isValidWorkspaceId(w)) {
      throw badRequest('token.invalid_workspace', `Malformed workspace id ${JSON.stringify(w.slice(0, 64))} (1-128 letters, digits, '.', '_', ':', '-', starting with a letter or digit; or '*')`);
    }
  }
  return [...new Set(v as string[])].sort();
}

export interface CreateRequest {
  readonly id: string | undefined;
  readonly scopes: string[];
  readonly workspaces: string[];
  readonly expiresIn: number | undefined;
}

export function parseCreate(body: Record<string, unknown>): CreateRequest {
  rejectUnknown(body, ['id', 'scopes', 'workspaces', 'expires_in']);
  let id: string | undefined;
  if (body.id !== undefined && body.id !== null) {
    if (typeof body.id !== 'string') throw badRequest('token.invalid_id', 'id must be a string');
    if (RESERVED_TOKEN_IDS.has(body.id)) throw badRequest('token.invalid_id', `id ${JSON.stringify(body.id)} is reserved`);
    if (!isValidNewTokenId(body.id)) {
      throw badRequest('token.invalid_id', `Malformed token id ${JSON.stringify(body.id.slice(0, 64))} (1-128 letters, digits, '.', '_', '-', starting with a letter or digit)`);
    }
    id = body.id;
  }
  return {
    id,
    scopes: parseScopes(body.scopes) ?? [],
    workspaces: parseWorkspaces(body.workspaces) ?? [],
    expiresIn: intField(body, 'expires_in', LIMITS.minExpiresIn, LIMITS.maxExpiresIn, ''),
  };
}

export interface RotateRequest {
  readonly overlap: number;
  readonly expiresIn: number | undefined;
  readonly scopes: string[] | undefined;
  readonly workspaces: string[] | undefined;
}

export function parseRotate(body: Record<string, unknown>): RotateRequest {
  rejectUnknown(body, ['overlap', 'expires_in', 'scopes', 'workspaces']);
  return {
    overlap: intField(body, 'overlap', 0, LIMITS.maxOverlap, ' (0 ends the old secret at once)') ?? LIMITS.defaultOverlap,
    expiresIn: intField(body, 'expires_in', LIMITS.minExpiresIn, LIMITS.maxExpiresIn, ''),
    scopes: parseScopes(body.scopes),
    workspaces: parseWorkspaces(body.workspaces),
  };
}

export function parseReason(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw badRequest('token.invalid_reason', 'reason must be a string');
  const t = v.trim();
  if (t.length > LIMITS.maxReason) throw badRequest('token.invalid_reason', `reason too long (at most ${LIMITS.maxReason} characters)`);
  // Control characters would corrupt tables and logs.
  if (/[\u0000-\u001f\u007f]/.test(t)) throw badRequest('token.invalid_reason', 'reason must not contain control characters');
  return t === '' ? undefined : t;
}

export function parseRevoke(body: Record<string, unknown>, query: URLSearchParams): { reason: string | undefined } {
  rejectUnknown(body, ['reason']);
  return { reason: parseReason(body.reason ?? query.get('reason') ?? undefined) };
}

export function parseStatuses(values: string[]): TokenStatus[] | undefined {
  const out: TokenStatus[] = [];
  for (const v of values.flatMap(splitList)) {
    const s = STATUSES.find((k) => k.toLowerCase() === v.toLowerCase());
    if (!s) throw badRequest('request.invalid_status', `Unknown status ${JSON.stringify(v.slice(0, 32))} (known: ${STATUSES.join(', ')})`);
    out.push(s);
  }
  return out.length ? out : undefined;
}

export function rejectUnknownParams(query: URLSearchParams, allowed: readonly string[]): void {
  for (const k of query.keys()) {
    if (!allowed.includes(k)) throw badRequest('request.unknown_parameter', `Unknown query parameter ${JSON.stringify(k.slice(0, 64))} (allowed: ${allowed.join(', ') || 'none'})`);
  }
}
