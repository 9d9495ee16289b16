import type { Identity } from '../authn/types';
import { AuthError, DENY_CODES, GrpcCode } from './codes';
import type { CheckInput } from './request';
import type { Credential } from './extract';

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

const IDENTITY_PREFIX = 'x-orcheo-';

const set = (key: string, value: string): HeaderOption => ({ header: { key, value }, append: { value: false } });

function struct(values: Record<string, string | boolean>): StructObject {
  const fields: Record<string, StructValue> = {};
  for (const [k, v] of Object.entries(values)) fields[k] = typeof v === 'boolean' ? { boolValue: v } : { stringValue: v };
  return { fields };
}

const sorted = (s: ReadonlySet<string>): string => [...s].sort().join(',');

export function identityFields(id: Identity): Record<string, string> {
  if (!id.authenticated) return { authenticated: 'false', identity_type: 'anonymous' };
  return {
    authenticated: 'true',
    subject: id.subject,
    identity_type: id.type,
    token_id: id.tokenId,
    scopes: sorted(id.scopes),
    workspaces: id.workspaces.has('*') ? '*' : sorted(id.workspaces),
  };
}

/**
 * Responses that depend only on the identity (or only on the deny) are built once and shared; the
 * gRPC layer also encodes each shared response once (see `isSharedResponse`). Encoding a fresh
 * response cost ~25 µs per Check, more than the whole decision.
 */
const shared = new WeakSet<CheckResponseObject>();
const allowByIdentity = new WeakMap<Identity, CheckResponseObject>();
const denyByKey = new Map<string, CheckResponseObject>();
const MAX_SHARED_DENIES = 512;

export function isSharedResponse(res: object): boolean {
  return shared.has(res as CheckResponseObject);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function share(res: CheckResponseObject): CheckResponseObject {
  shared.add(res);
  return deepFreeze(res);
}

const headerName = (field: string): string => `${IDENTITY_PREFIX}${field.replace(/_/g, '-')}`;

/** The headers an allow for this identity sets (and so overwrites), derived from `identityFields`. */
const written = new WeakMap<Identity, ReadonlySet<string>>();
function writtenHeaders(identity: Identity): ReadonlySet<string> {
  let names = written.get(identity);
  if (!names) {
    names = new Set(Object.keys(identityFields(identity)).map(headerName));
    written.set(identity, names);
  }
  return names;
}

function buildAllow(identity: Identity, remove: string[], queryParam: string | undefined): CheckResponseObject {
  const fields = identityFields(identity);
  const meta: Record<string, string | boolean> = { ...fields, authenticated: identity.authenticated };
  return {
    status: { code: GrpcCode.OK, message: '' },
    ok_response: {
      headers: Object.entries(fields).map(([k, v]) => set(headerName(k), v)),
      headers_to_remove: remove,
      query_parameters_to_remove: queryParam ? [queryParam] : [],
    },
    dynamic_metadata: struct(meta),
  };
}

/**
 * Phase 4 (allow): trusted identity headers overwrite anything the client sent; any other client
 * header with the `x-orcheo-` prefix is removed, so an upstream never sees a spoofed identity.
 */
export function allowResponse(input: CheckInput, identity: Identity, credential: Credential | undefined): CheckResponseObject {
  let remove: string[] | undefined;
  for (const name of input.headers.keys()) {
    if (name.startsWith(IDENTITY_PREFIX) && !writtenHeaders(identity).has(name)) (remove ??= []).push(name);
  }
  if (remove || credential?.queryParam) return buildAllow(identity, remove ?? [], credential?.queryParam);
  let res = allowByIdentity.get(identity);
  if (!res) {
    res = share(buildAllow(identity, [], undefined));
    allowByIdentity.set(identity, res);
  }
  return res;
}

/** Phase 4 (deny): status, JSON body `{message, code}` and the headers the contract's table names. */
export function denyResponse(err: AuthError, tokenPresented: boolean): CheckResponseObject {
  if (err.retryAfterSeconds !== undefined) return buildDeny(err, tokenPresented);
  const key = `${err.code}|${tokenPresented ? 1 : 0}|${err.message}`;
  let res = denyByKey.get(key);
  if (!res) {
    res = share(buildDeny(err, tokenPresented));
    // Messages are bounded (codes × scope lists of the policy); the cap guards the unexpected.
    if (denyByKey.size < MAX_SHARED_DENIES) denyByKey.set(key, res);
  }
  return res;
}

function buildDeny(err: AuthError, tokenPresented: boolean): CheckResponseObject {
  const info = DENY_CODES[err.code];
  const headers = [set('content-type', 'application/json'), set('cache-control', 'no-store')];
  if (info.httpStatus === 401) headers.push(set('www-authenticate', tokenPresented ? 'Bearer error="invalid_token"' : 'Bearer'));
  if (err.code === 'auth.missing_scope') headers.push(set('www-authenticate', 'Bearer error="insufficient_scope"'));
  if ((info.httpStatus === 429 || info.httpStatus === 503) && err.retryAfterSeconds !== undefined) {
    headers.push(set('retry-after', String(Math.max(1, Math.ceil(err.retryAfterSeconds)))));
  }
  return {
    status: { code: info.grpcStatus, message: err.code },
    denied_response: {
      status: { code: info.httpStatus },
      headers,
      body: JSON.stringify({ message: err.message, code: err.code }),
    },
    dynamic_metadata: struct({ authenticated: false, code: err.code }),
  };
}
