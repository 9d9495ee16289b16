import { DENY_CODES } from '../errors/deny';
import type { AllowDecision, Decision, DenyDecision, Header } from '../pipeline/decision';
import { denyHttp } from '../pipeline/deny-http';
import { identityHeaders, identityMetadata } from '../pipeline/identity-headers';

/** CheckResponse in the object shape @grpc/proto-loader serialises (keepCase). */
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

function struct(values: Readonly<Record<string, string | boolean>>): StructObject {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(values)) fields[k] = typeof v === 'boolean' ? { boolValue: v } : { stringValue: v };
  return { fields };
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Responses that depend only on the identity (or only on the deny) are built once, frozen and
 * shared; the server encodes each shared response once (see `isSharedResponse`). Encoding a fresh
 * response cost ~25 µs per Check, more than the whole decision.
 */
const shared = new WeakSet<CheckResponseObject>();
const allowByHeaders = new WeakMap<readonly Header[], CheckResponseObject>();
const denyByKey = new Map<string, CheckResponseObject>();
const MAX_SHARED_DENIES = 512;

export function isSharedResponse(res: object): boolean {
  return shared.has(res as CheckResponseObject);
}

function share(res: CheckResponseObject): CheckResponseObject {
  shared.add(res);
  return deepFreeze(res);
}

function buildAllow(d: AllowDecision): CheckResponseObject {
  const meta = d.shadow ? { ...identityMetadata(d.identity), shadow_code: d.shadow.code } : identityMetadata(d.identity);
  return {
    status: { code: OK, message: '' },
    ok_response: {
      headers: d.headers.map(option),
      headers_to_remove: [...d.headersToRemove],
      query_parameters_to_remove: [...d.queryParamsToRemove],
    },
    dynamic_metadata: struct(meta),
  };
}

function toAllow(d: AllowDecision): CheckResponseObject {
  const plain = (d.headers === identityHeaders(d.identity) || Object.isFrozen(d.headers)) && d.headersToRemove.length === 0 && d.queryParamsToRemove.length === 0 && !d.shadow;
  if (!plain) return buildAllow(d);
  let res = allowByHeaders.get(d.headers);
  if (!res) {
    res = share(buildAllow(d));
    allowByHeaders.set(d.headers, res);
  }
  return res;
}

function buildDeny(d: DenyDecision): CheckResponseObject {
  const http = denyHttp(d.error, d.tokenPresented, undefined);
  return {
    status: { code: DENY_CODES[d.error.code].grpcStatus, message: d.error.code },
    denied_response: { status: { code: http.status }, headers: http.headers.map(option), body: http.body },
    dynamic_metadata: struct({ authenticated: false, code: d.error.code }),
  };
}

function toDeny(d: DenyDecision): CheckResponseObject {
  if (d.error.retryAfterSeconds !== undefined) return buildDeny(d);
  const key = `${d.error.code}|${d.tokenPresented ? 1 : 0}|${d.error.message}`;
  let res = denyByKey.get(key);
  if (!res) {
    res = share(buildDeny(d));
    // Messages are bounded (codes × scope lists of the policy); the cap guards the unexpected.
    if (denyByKey.size < MAX_SHARED_DENIES) denyByKey.set(key, res);
  }
  return res;
}

/** The Decision as Envoy's CheckResponse (`ok_response` / `denied_response`, `dynamic_metadata`). */
export function toCheckResponse(d: Decision): CheckResponseObject {
  return d.allow ? toAllow(d) : toDeny(d);
}
