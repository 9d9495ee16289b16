import { randomUUID } from 'node:crypto';

const MAX_REQUEST_ID = 128;
/** Printable ASCII without space: an id that is safe in a log line, a JSON body and a header. */
const PRINTABLE = /^[\x21-\x7e]+$/;

/**
 * The decision id: the request's `x-request-id` when Envoy (or the client) set a usable one, so a
 * deny body, the access log and our log line share it; otherwise a fresh UUID.
 */
export function decisionId(headers: ReadonlyMap<string, string>): string {
  const given = headers.get('x-request-id');
  if (given !== undefined && given.length <= MAX_REQUEST_ID && PRINTABLE.test(given)) return given;
  return randomUUID();
}
