import { DENY_CODES } from '../errors/deny';
import type { AllowDecision, Decision, DenyDecision, Header } from '../pipeline/decision';
import { denyBody, denyHeaders, denyHttp } from '../pipeline/deny-http';
import { identityHeaders, identityMetadata } from '../pipeline/identity-headers';
import { assemble, deniedHead, join, okResponseField, statusField, structEntries, type Bytes, type StructValues } from './encode';

/** CheckResponse in the object shape @grpc/proto-loader serialises (keepCase): the readable form. */
export interface CheckResponseObject {
  status: { code: number; message: string };
  ok_response?: {
    headers: HeaderOption[];
    headers_to_remove: string[];
    query_parameters_to_remove: string[];
  };
  denied_response?: { status: { code: number }; headers: HeaderOption[]; body: string };
  dynamic_metadata?: StructObject;
}

interface HeaderOption {
  header: { key: string; value: string };
  append: { value: boolean };
}
// protobufjs defines the well-known types with camelCase field names, whatever `keepCase` says.
type StructValue = { stringValue: string } | { boolValue: boolean };
export interface StructObject {
  fields: Record<string, StructValue>;
}

const OK = 0;

/** Every header is sent with `append: false`: ours overwrite the client's. */
const option = ([key, value]: Header): HeaderOption => ({ header: { key, value }, append: { value: false } });

function struct(values: StructValues): StructObject {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(values)) fields[k] = typeof v === 'boolean' ? { boolValue: v } : { stringValue: v };
  return { fields };
}

const allowMetadata = (d: AllowDecision): StructValues => (d.shadow ? { ...identityMetadata(d.identity), shadow_code: d.shadow.code } : identityMetadata(d.identity));
const denyMetadata = (d: DenyDecision): StructValues => ({ authenticated: false, code: d.error.code });

/**
 * The Decision as Envoy's CheckResponse object (`ok_response` / `denied_response`, `dynamic_metadata`
 * with `decision_id`, deny body with `request_id`). The server sends `encodeCheckResponse`'s bytes,
 * which the wire-compat test holds to this form field by field.
 */
export function toCheckResponse(d: Decision): CheckResponseObject {
  if (d.allow) {
    return {
      status: { code: OK, message: '' },
      ok_response: { headers: d.headers.map(option), headers_to_remove: [...d.headersToRemove], query_parameters_to_remove: [...d.queryParamsToRemove] },
      dynamic_metadata: struct({ ...allowMetadata(d), decision_id: d.requestId }),
    };
  }
  const http = denyHttp(d.error, d.tokenPresented, d.requestId);
  return {
    status: { code: DENY_CODES[d.error.code].grpcStatus, message: d.error.code },
    denied_response: { status: { code: http.status }, headers: http.headers.map(option), body: http.body },
    dynamic_metadata: struct({ ...denyMetadata(d), decision_id: d.requestId }),
  };
}

/**
 * What a response shares with others of the same identity (or the same deny): everything but the
 * decision id and the deny body. Encoding a whole CheckResponse with protobufjs cost ~25 µs per
 * Check, more than the decision; the per-request part is two short fields.
 */
interface Template {
  /** CheckResponse.status, plus ok_response for an allow. */
  readonly head: Bytes;
  /** DeniedHttpResponse status and headers (a deny only). */
  readonly denied?: Bytes;
  /** The dynamic_metadata Struct's entries, without decision_id. */
  readonly meta: Bytes;
}

const allowByHeaders = new WeakMap<readonly Header[], Template>();
/** code → token presented → message → template. */
const denyByKey = new Map<string, [Map<string, Template>, Map<string, Template>]>();
const MAX_CACHED_DENIES = 512;

const allowTemplate = (d: AllowDecision): Template => ({ head: join([statusField(OK, ''), okResponseField(d)]), meta: structEntries(allowMetadata(d)) });

function cachedAllow(d: AllowDecision): Template {
  // A frozen header list is shared by every request it answers (the identity's own, or one per re-used assertion).
  const plain = (d.headers === identityHeaders(d.identity) || Object.isFrozen(d.headers)) && d.headersToRemove.length === 0 && d.queryParamsToRemove.length === 0 && !d.shadow;
  if (!plain) return allowTemplate(d);
  let t = allowByHeaders.get(d.headers);
  if (!t) {
    t = allowTemplate(d);
    allowByHeaders.set(d.headers, t);
  }
  return t;
}

function denyTemplate(d: DenyDecision): Template {
  const head = statusField(DENY_CODES[d.error.code].grpcStatus, d.error.code);
  return { head, denied: deniedHead(DENY_CODES[d.error.code].httpStatus, denyHeaders(d.error, d.tokenPresented)), meta: structEntries(denyMetadata(d)) };
}

/** The deny's template; only its body (which carries the request id) is built per request. */
function deny(d: DenyDecision): Template {
  // retry-after varies per call; the message is bounded (codes × scope lists of the policy).
  if (d.error.retryAfterSeconds !== undefined) return denyTemplate(d);
  let byCode = denyByKey.get(d.error.code);
  if (!byCode) denyByKey.set(d.error.code, (byCode = [new Map(), new Map()]));
  const byMessage = byCode[d.tokenPresented ? 1 : 0];
  let t = byMessage.get(d.error.message);
  if (!t) {
    t = denyTemplate(d);
    if (byMessage.size < MAX_CACHED_DENIES) byMessage.set(d.error.message, t);
  }
  return t;
}

/** The Decision's CheckResponse, encoded: cached bytes plus the per-request fields. */
export function encodeCheckResponse(d: Decision): Buffer {
  if (d.allow) {
    const t = cachedAllow(d);
    return assemble(t.head, t.meta, d.requestId);
  }
  const t = deny(d);
  return assemble(t.head, t.meta, d.requestId, { head: t.denied!, body: denyBody(d.error, d.requestId) });
}
