import type { ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { ApiError, HTTP_STATUS, type ApiErrorCode } from '../errors/api';
import { StoreUnavailableError } from '../store/db';
import { sendJson } from './http-server';

export { ApiError } from '../errors/api';

/** Seconds a client should wait before retrying after `store.unavailable`. */
export const STORE_RETRY_AFTER_SECONDS = 5;

/** Sent on every admin API response: secrets must not be cached, sniffed or framed. */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  pragma: 'no-cache',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
});

export const badRequest = (code: ApiErrorCode, message: string): ApiError => new ApiError(code, message);

export function sendApi(res: ServerResponse, status: number, body: unknown, headers: Readonly<Record<string, string>> = {}): void {
  sendJson(res, status, body, { ...headers, ...SECURITY_HEADERS });
}

function sendCode(res: ServerResponse, code: ApiErrorCode, message: string, headers?: Readonly<Record<string, string>>): void {
  sendApi(res, HTTP_STATUS[code], { message, code }, headers);
}

/**
 * The one mapping from a thrown error to the admin API's answer: an ApiError with its code's
 * status, an unreachable store a 503 `store.unavailable`, anything else a 500 `http.internal`.
 * The bodies of the last two are fixed texts: a driver's message may name hosts or values.
 */
export function sendError(res: ServerResponse, err: unknown, logger: Logger, context: Record<string, unknown>): void {
  if (err instanceof ApiError) return sendCode(res, err.code, err.message, err.headers);
  if (err instanceof StoreUnavailableError) {
    logger.warn({ err: err.message, ...context }, 'admin API: token store unavailable');
    return sendCode(res, 'store.unavailable', 'Token store is temporarily unavailable', { 'retry-after': String(STORE_RETRY_AFTER_SECONDS) });
  }
  logger.error({ err: (err as Error)?.message, code: (err as { code?: unknown })?.code, ...context }, 'admin API request failed');
  if (!res.headersSent) return sendCode(res, 'http.internal', 'Internal error');
  res.destroy();
}
