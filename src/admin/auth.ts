import type { IncomingMessage } from 'node:http';
import type { CheckFn } from '../pipeline/check';
import type { RawCheckRequest } from '../pipeline/request';
import { requestClientIp } from './http-server';

/** Who called the admin API, for the audit trail. Never holds a credential. */
export interface AdminActor {
  readonly subject: string;
  readonly type: string;
  readonly tokenId: string;
  readonly clientIp: string | undefined;
  readonly userAgent: string | undefined;
  readonly forwardedFor: string | undefined;
  /** What the caller holds, so create/rotate can grant no more (privilege escalation). */
  readonly scopes: readonly string[];
  readonly workspaces: readonly string[];
}

export type AdminAuthResult =
  | { readonly ok: true; readonly actor: AdminActor }
  | { readonly ok: false; readonly status: number; readonly headers: Record<string, string>; readonly body: string };

export type AdminAccess = 'read' | 'write';

/** The scope each kind of admin request needs (the built-in policy's rule for these paths). */
export const ADMIN_SCOPES: Readonly<Record<AdminAccess, string>> = { read: 'admin:tokens:read', write: 'admin:tokens:write' };

const HTTP_STATUS_NAMES: Record<string, number> = { Unauthorized: 401, Forbidden: 403, TooManyRequests: 429, ServiceUnavailable: 503 };

/**
 * The HTTP request as the pipeline's input: method, path and query, headers, and as the source
 * address the client address the HTTP side resolved (TCP peer, or x-forwarded-for from a trusted
 * proxy). The caller's own x-forwarded-for is left out: the pipeline would otherwise pick an entry
 * by ORCHEO_AUTH_XFF_TRUSTED_HOPS, which only holds for Envoy, and any caller could choose its key.
 */
export function toRawCheckRequest(req: IncomingMessage, access: AdminAccess): RawCheckRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k.toLowerCase() === 'x-forwarded-for') continue;
    headers[k.toLowerCase()] = Array.isArray(v) ? v.join(',') : v;
  }
  return {
    attributes: {
      source: { address: { socket_address: { address: requestClientIp(req) } } },
      request: { http: { method: (req.method ?? 'GET').toUpperCase(), path: req.url ?? '/', headers } },
      // The admin API's own route settings, as Envoy would declare them per route: always
      // authenticated (even when the global mode is optional), and the admin scope for the access.
      context_extensions: { auth: 'required', required_scopes: ADMIN_SCOPES[access] },
    },
  };
}

/**
 * Authenticates an admin request through the same Check pipeline as Envoy's requests (bootstrap,
 * service tokens, JWT; policy; rate limits; metrics; audit counters). A deny maps to the status,
 * headers and JSON body the pipeline produced. An anonymous allow (global mode `disabled`) is
 * still refused: admin endpoints always require authentication.
 */
export async function authenticateAdmin(check: CheckFn, req: IncomingMessage, access: AdminAccess): Promise<AdminAuthResult> {
  const res = await check(toRawCheckRequest(req, access));
  if (res.denied_response) {
    const c = res.denied_response.status.code as number | string;
    const status = typeof c === 'number' ? c : (HTTP_STATUS_NAMES[c] ?? 403);
    const headers: Record<string, string> = {};
    for (const h of res.denied_response.headers) headers[h.header.key.toLowerCase()] = h.header.value;
    return { ok: false, status, headers, body: res.denied_response.body };
  }
  const fields = new Map((res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]));
  if (fields.get('x-orcheo-authenticated') !== 'true') {
    return {
      ok: false,
      status: 401,
      headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer' },
      body: JSON.stringify({ message: 'Missing bearer token (the admin API always requires authentication)', code: 'auth.missing_token' }),
    };
  }
  const ua = req.headers['user-agent'];
  const xff = req.headers['x-forwarded-for'];
  return {
    ok: true,
    actor: {
      subject: fields.get('x-orcheo-subject') ?? 'unknown',
      type: fields.get('x-orcheo-identity-type') ?? 'unknown',
      tokenId: fields.get('x-orcheo-token-id') ?? '',
      clientIp: requestClientIp(req),
      userAgent: typeof ua === 'string' ? ua : undefined,
      forwardedFor: typeof xff === 'string' ? xff : Array.isArray(xff) ? xff.join(',') : undefined,
      scopes: (fields.get('x-orcheo-scopes') ?? '').split(',').filter(Boolean),
      workspaces: (fields.get('x-orcheo-workspaces') ?? '').split(',').filter(Boolean),
    },
  };
}
