import { DENY_CODES, type AuthError } from '../errors/deny';
import type { Header } from './decision';

/** A deny as HTTP: what the client receives, whichever front door answers. */
export interface HttpDeny {
  readonly status: number;
  readonly headers: readonly Header[];
  readonly body: string;
}

/** Status, the contract's headers, and the JSON body `{message, code, request_id}`. */
export function denyHttp(err: AuthError, tokenPresented: boolean, requestId: string | undefined): HttpDeny {
  const info = DENY_CODES[err.code];
  const headers: Header[] = [['content-type', 'application/json'], ['cache-control', 'no-store']];
  if (info.httpStatus === 401) headers.push(['www-authenticate', tokenPresented ? 'Bearer error="invalid_token"' : 'Bearer']);
  if (err.code === 'auth.missing_scope') headers.push(['www-authenticate', 'Bearer error="insufficient_scope"']);
  if ((info.httpStatus === 429 || info.httpStatus === 503) && err.retryAfterSeconds !== undefined) {
    headers.push(['retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds)))]);
  }
  const body = requestId === undefined ? { message: err.message, code: err.code } : { message: err.message, code: err.code, request_id: requestId };
  return { status: info.httpStatus, headers, body: JSON.stringify(body) };
}
