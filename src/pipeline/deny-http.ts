import { DENY_CODES, type AuthError } from '../errors/deny';
import type { Header } from './decision';

/** A deny as HTTP: what the client receives, whichever front door answers. */
export interface HttpDeny {
  readonly status: number;
  readonly headers: readonly Header[];
  readonly body: string;
}

/** The contract's headers for this deny (status-dependent, never per request but for retry-after). */
export function denyHeaders(err: AuthError, tokenPresented: boolean): Header[] {
  const status = DENY_CODES[err.code].httpStatus;
  const headers: Header[] = [['content-type', 'application/json'], ['cache-control', 'no-store']];
  if (status === 401) headers.push(['www-authenticate', tokenPresented ? 'Bearer error="invalid_token"' : 'Bearer']);
  if (err.code === 'auth.missing_scope') headers.push(['www-authenticate', 'Bearer error="insufficient_scope"']);
  if ((status === 429 || status === 503) && err.retryAfterSeconds !== undefined) {
    headers.push(['retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds)))]);
  }
  return headers;
}

/**
 * `{"message":…,"code":…` per code and message, so a deny serialises only its request id. Messages
 * are bounded per code (codes × the policy's scope lists), except where an IP is in the message:
 * past MAX_PREFIXES per code the prefix is built per call instead of cached.
 */
const prefixes = new Map<string, Map<string, string>>();
const MAX_PREFIXES = 256;

function bodyPrefix(err: AuthError): string {
  let byMessage = prefixes.get(err.code);
  if (!byMessage) prefixes.set(err.code, (byMessage = new Map()));
  let prefix = byMessage.get(err.message);
  if (prefix === undefined) {
    prefix = JSON.stringify({ message: err.message, code: err.code }).slice(0, -1);
    if (byMessage.size < MAX_PREFIXES) byMessage.set(err.message, prefix);
  }
  return prefix;
}

/** The JSON body `{message, code, request_id}`: the only part of a deny that differs per request. */
export function denyBody(err: AuthError, requestId: string | undefined): string {
  // Byte for byte what JSON.stringify({message, code, request_id}) writes (test/wire-response.test.ts).
  return requestId === undefined ? `${bodyPrefix(err)}}` : `${bodyPrefix(err)},"request_id":${JSON.stringify(requestId)}}`;
}

/** Status, the contract's headers, and the JSON body. */
export function denyHttp(err: AuthError, tokenPresented: boolean, requestId: string | undefined): HttpDeny {
  return { status: DENY_CODES[err.code].httpStatus, headers: denyHeaders(err, tokenPresented), body: denyBody(err, requestId) };
}
