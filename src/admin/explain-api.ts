import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { CheckFn, RequestParts } from '../pipeline/decision';
import type { Explanation } from '../pipeline/explain';
import { MAX_TOKEN_LENGTH } from '../util/limits';
import { authenticateAdmin } from './auth';
import { readJsonBody } from './body';
import { ApiError, badRequest, SECURITY_HEADERS } from './errors';
import { requestClientIp, sendJson, type Route } from './http-server';

export const EXPLAIN_PATH = '/api/admin/explain';

export interface ExplainDeps {
  readonly check: CheckFn;
  readonly explain: (parts: RequestParts) => Promise<Explanation>;
  readonly logger: Logger;
}

const FIELDS = ['method', 'path', 'headers', 'token', 'ip', 'context'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
const CONTEXT_KEY = /^[A-Za-z0-9_.-]{1,64}$/;
// No control characters: a header value or path with CR/LF could never reach Envoy like this.
const PRINTABLE = /^[^\x00-\x1f\x7f]*$/;
const MAX_HEADERS = 100;
const MAX_VALUE = 16 * 1024;

function stringMap(v: unknown, field: 'headers' | 'context', key: RegExp, max: number): [string, string][] {
  const code = field === 'headers' ? 'explain.invalid_headers' : 'explain.invalid_context';
  if (v === undefined) return [];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw badRequest(code, `${field} must be an object of strings`);
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > max) throw badRequest(code, `${field}: at most ${max} entries`);
  for (const [k, val] of entries) {
    if (!key.test(k)) throw badRequest(code, `${field}: invalid name ${JSON.stringify(k.slice(0, 64))}`);
    // The value is not echoed: a header may well hold a credential.
    if (typeof val !== 'string' || val.length > MAX_VALUE || !PRINTABLE.test(val)) throw badRequest(code, `${field}.${k} must be a string of printable characters (at most ${MAX_VALUE})`);
  }
  return entries as [string, string][];
}

/** The body as the pipeline's input; every refusal names the field and never echoes a value that may be secret. */
export function parseExplainRequest(body: Record<string, unknown>, callerIp: string): RequestParts {
  const unknown = Object.keys(body).filter((k) => !FIELDS.includes(k));
  if (unknown.length) throw badRequest('explain.unknown_field', `Unknown field ${JSON.stringify(unknown[0]!.slice(0, 64))} (known: ${FIELDS.join(', ')})`);
  const { method, path, token, ip } = body;
  if (typeof method !== 'string' || !/^[A-Za-z]{1,16}$/.test(method)) throw badRequest('explain.invalid_method', 'method is required: an HTTP method such as GET');
  if (typeof path !== 'string' || !path.startsWith('/') || path.length > 8192 || !PRINTABLE.test(path)) throw badRequest('explain.invalid_path', 'path is required: starting with /, printable, at most 8192 characters');
  const headers = new Map<string, string>();
  for (const [k, v] of stringMap(body.headers, 'headers', HEADER_NAME, MAX_HEADERS)) {
    const name = k.toLowerCase();
    headers.set(name, headers.has(name) ? `${headers.get(name)},${v}` : v);
  }
  if (token !== undefined) {
    if (typeof token !== 'string' || token === '' || token.length > MAX_TOKEN_LENGTH || !/^[\x21-\x7e]+$/.test(token)) throw badRequest('explain.invalid_token', `token must be a non-empty printable string without spaces (at most ${MAX_TOKEN_LENGTH})`);
    if (headers.has('authorization')) throw badRequest('explain.conflicting_token', 'give the token either as token or as headers.authorization, not both');
    headers.set('authorization', `Bearer ${token}`);
  }
  if (ip !== undefined && (typeof ip !== 'string' || isIP(ip) === 0)) throw badRequest('explain.invalid_ip', 'ip must be an IPv4 or IPv6 address');
  const context = Object.fromEntries(stringMap(body.context, 'context', CONTEXT_KEY, 32));
  return { method: method.toUpperCase(), path, headers, sourceAddress: (ip as string | undefined) ?? callerIp, contextExtensions: context };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  sendJson(res, status, body, { ...headers, ...SECURITY_HEADERS });
}

/**
 * `POST /api/admin/explain` (scope admin:tokens:read): how this replica would decide a request, counting
 * nothing. The caller is authenticated (and counted) like any admin request; the explained request is not.
 * Nothing from the body is logged: it may carry a token.
 */
export function explainRoutes(deps: ExplainDeps): Route[] {
  const handler = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const auth = await authenticateAdmin(deps.check, req, 'read');
    if (!auth.ok) {
      const { 'content-length': _drop, ...headers } = auth.headers;
      void _drop;
      return send(res, auth.status, JSON.parse(auth.body), headers);
    }
    try {
      const parts = parseExplainRequest(await readJsonBody(req), requestClientIp(req));
      return send(res, 200, await deps.explain(parts));
    } catch (err) {
      if (err instanceof ApiError) return send(res, err.status, { message: err.message, code: err.code }, err.headers);
      deps.logger.error({ err: (err as Error)?.message }, 'admin explain failed');
      if (!res.headersSent) return send(res, 500, { message: 'Internal error', code: 'http.internal' });
      res.destroy();
    }
  };
  return [{ method: 'POST', path: EXPLAIN_PATH, handler }];
}
