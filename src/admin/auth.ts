import type { IncomingMessage } from 'node:http';
import type { CheckFn, RequestParts } from '../pipeline/decision';
import { denyHttp, type HttpDeny } from '../pipeline/deny-http';
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

/**
 * The HTTP request as the pipeline's input: method, path and query, headers, and as the source
 * address the client address the HTTP side resolved (TCP peer, or x-forwarded-for from a trusted
 * proxy). The caller's own x-forwarded-for is left out: the pipeline would otherwise pick an entry
 * by ORCHEO_AUTH_XFF_TRUSTED_HOPS, which only holds for Envoy, and any caller could choose its key.
 */
export function toRequestParts(req: IncomingMessage, access: AdminAccess): RequestParts {
  const headers = new Map<string, string>();
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined || k === 'x-forwarded-for') continue;
    headers.set(k, Array.isArray(v) ? v.join(',') : v);
  }
  return {
    method: req.method ?? 'GET',
    path: req.url ?? '/',
    headers,
    sourceAddress: requestClientIp(req),
    // The admin API's own route settings, as Envoy would declare them per route: always
    // authenticated (even when the global mode is optional), and the admin scope for the access.
    contextExtensions: { auth: 'required', required_scopes: ADMIN_SCOPES[access] },
  };
}

/**
 * Authenticates an admin request through the same Check pipeline as Envoy's requests (bootstrap,
 * service tokens, JWT; policy; rate limits; metrics; audit counters). A deny maps to the status,
 * headers and JSON body the pipeline produced. An anonymous allow (global mode `disabled`) is
 * still refused: admin endpoints always require authentication.
 */
export async function authenticateAdmin(check: CheckFn, req: IncomingMessage, access: AdminAccess): Promise<AdminAuthResult> {
  const parts = toRequestParts(req, access);
  const d = await check(parts);
  const refuse = (http: HttpDeny): AdminAuthResult => ({ ok: false, status: http.status, headers: Object.fromEntries(http.headers), body: http.body });
  if (!d.allow) return refuse(denyHttp(d.error, d.tokenPresented, d.requestId));
  // A shadow allow (a policy rule or default with `enforce: false` matching the admin path) is still
  // a denial here: shadow mode is for proxied routes, never a way into token administration.
  if (d.shadow) return refuse(denyHttp(d.shadow, parts.headers.has('authorization'), d.requestId));
  const id = d.identity;
  if (!id.authenticated) {
    return {
      ok: false,
      status: 401,
      headers: { 'content-type': 'application/json', 'www-authenticate': 'Bearer' },
      body: JSON.stringify({ message: 'Missing bearer token (the admin API always requires authentication)', code: 'auth.missing_token', request_id: d.requestId }),
    };
  }
  const ua = req.headers['user-agent'];
  const xff = req.headers['x-forwarded-for'];
  return {
    ok: true,
    actor: {
      subject: id.subject,
      type: id.type,
      tokenId: id.tokenId,
      clientIp: requestClientIp(req),
      userAgent: typeof ua === 'string' ? ua : undefined,
      forwardedFor: typeof xff === 'string' ? xff : Array.isArray(xff) ? xff.join(',') : undefined,
      scopes: [...id.scopes].sort(),
      workspaces: [...id.workspaces].sort(),
    },
  };
}
