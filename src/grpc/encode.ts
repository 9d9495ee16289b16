import { Writer } from 'protobufjs/minimal';
import type { Header } from '../pipeline/decision';

/**
 * A hand-written encoder for the few messages a CheckResponse is made of (field numbers from
 * proto/envoy/service/auth/v3/external_auth.proto, config/core/v3/base.proto, google/rpc/status.proto,
 * google/protobuf/struct.proto). It exists so that a response can be assembled from cached bytes plus
 * the per-request fields (decision id, deny body): a protobuf message's encoding is the concatenation
 * of its fields, and a map's entries are repeated fields. The cached parts are written with
 * protobufjs' Writer; the per-request tail by `assemble`. test/wire-response.test.ts decodes its output
 * with the server's deserializer and with Envoy's canonical schema, and compares it byte for byte with
 * protobufjs' encoding of the object form (response.ts `toCheckResponse`).
 *
 * What must NOT be concatenated: two occurrences of a singular message field (protobufjs keeps only
 * the last one instead of merging them), hence one dynamic_metadata holding the cached entries and
 * the decision id, and one denied_response holding the cached status and headers and the body.
 */
export type Bytes = Uint8Array;

const LEN = 2;
const tag = (field: number, wireType: number): number => (field << 3) | wireType;

/** CheckResponse field numbers. */
const RESPONSE = { status: 1, deniedResponse: 2, okResponse: 3, dynamicMetadata: 4 } as const;

/** google.rpc.Status {code = 1, message = 2}, as CheckResponse field 1. */
export function statusField(code: number, message: string): Bytes {
  // An empty message is still written, as protobufjs does: the bytes then equal its encoding of the object form.
  return Writer.create().uint32(tag(RESPONSE.status, LEN)).fork().uint32(tag(1, 0)).int32(code).uint32(tag(2, LEN)).string(message).ldelim().finish();
}

/** Repeated HeaderValueOption {header = 1 {key = 1, value = 2}, append = 2 BoolValue{false}}: ours overwrite. */
function headerOptions(w: Writer, field: number, headers: readonly Header[]): Writer {
  for (const [key, value] of headers) {
    w.uint32(tag(field, LEN)).fork();
    w.uint32(tag(1, LEN)).fork().uint32(tag(1, LEN)).string(key).uint32(tag(2, LEN)).string(value).ldelim();
    w.uint32(tag(2, LEN)).fork().uint32(tag(1, 0)).bool(false).ldelim();
    w.ldelim();
  }
  return w;
}

export interface OkFields {
  readonly headers: readonly Header[];
  readonly headersToRemove: readonly string[];
  readonly queryParamsToRemove: readonly string[];
}

/** OkHttpResponse {headers = 2, headers_to_remove = 5, query_parameters_to_remove = 8}, as CheckResponse field 3. */
export function okResponseField(ok: OkFields): Bytes {
  const w = headerOptions(Writer.create().uint32(tag(RESPONSE.okResponse, LEN)).fork(), 2, ok.headers);
  for (const h of ok.headersToRemove) w.uint32(tag(5, LEN)).string(h);
  for (const q of ok.queryParamsToRemove) w.uint32(tag(8, LEN)).string(q);
  return w.ldelim().finish();
}

/** DeniedHttpResponse's fields before the body: status = 1 (HttpStatus {code = 1}), headers = 2. */
export function deniedHead(httpStatus: number, headers: readonly Header[]): Bytes {
  const w = Writer.create().uint32(tag(1, LEN)).fork().uint32(tag(1, 0)).int32(httpStatus).ldelim();
  return headerOptions(w, 2, headers).finish();
}

export type StructValues = Readonly<Record<string, string | boolean>>;

/** google.protobuf.Struct entries (map field 1 of {key = 1, Value = 2 {string_value = 3 | bool_value = 4}}). */
export function structEntries(values: StructValues): Bytes {
  const w = Writer.create();
  for (const key of Object.keys(values)) {
    const v = values[key]!;
    w.uint32(tag(1, LEN)).fork().uint32(tag(1, LEN)).string(key).uint32(tag(2, LEN)).fork();
    if (typeof v === 'boolean') w.uint32(tag(4, 0)).bool(v);
    else w.uint32(tag(3, LEN)).string(v);
    w.ldelim().ldelim();
  }
  return w.finish();
}

/** Bytes a varint of `n` (< 2^32) takes. */
const varintSize = (n: number): number => (n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : n < 0x10000000 ? 4 : 5);

function putVarint(buf: Buffer, at: number, n: number): number {
  while (n > 0x7f) {
    buf[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[at++] = n;
  return at;
}

/** The `decision_id` map entry's key field, the same for every response. */
const DECISION_ID_KEY = Writer.create().uint32(tag(1, LEN)).string('decision_id').finish();

/**
 * What varies per request, written straight into one buffer after the cached bytes: Writer's
 * fork/finish and a Buffer.concat per field cost more than the rest of the encoding (~2 µs a call).
 * Layout (field numbers as above): `head`, then for a deny `denied_response` = `denied` + body (3),
 * then `dynamic_metadata` = `meta` + entry {key "decision_id", value Value{string_value (3) = id}}.
 */
export function assemble(head: Bytes, meta: Bytes, decisionId: string, denied?: { readonly head: Bytes; readonly body: string }): Buffer {
  const idLen = Buffer.byteLength(decisionId);
  const valueLen = 1 + varintSize(idLen) + idLen;
  const entryLen = DECISION_ID_KEY.length + 1 + varintSize(valueLen) + valueLen;
  const structLen = meta.length + 1 + varintSize(entryLen) + entryLen;
  const bodyLen = denied ? Buffer.byteLength(denied.body) : 0;
  const deniedLen = denied ? denied.head.length + 1 + varintSize(bodyLen) + bodyLen : 0;
  const total = head.length + (denied ? 1 + varintSize(deniedLen) + deniedLen : 0) + 1 + varintSize(structLen) + structLen;
  const buf = Buffer.allocUnsafe(total);
  buf.set(head, 0);
  let at = head.length;
  if (denied) {
    buf[at++] = tag(RESPONSE.deniedResponse, LEN);
    at = putVarint(buf, at, deniedLen);
    buf.set(denied.head, at);
    at += denied.head.length;
    buf[at++] = tag(3, LEN);
    at = putVarint(buf, at, bodyLen);
    at += buf.write(denied.body, at, 'utf8');
  }
  buf[at++] = tag(RESPONSE.dynamicMetadata, LEN);
  at = putVarint(buf, at, structLen);
  buf.set(meta, at);
  at += meta.length;
  buf[at++] = tag(1, LEN);
  at = putVarint(buf, at, entryLen);
  buf.set(DECISION_ID_KEY, at);
  at += DECISION_ID_KEY.length;
  buf[at++] = tag(2, LEN);
  at = putVarint(buf, at, valueLen);
  buf[at++] = tag(3, LEN);
  at = putVarint(buf, at, idLen);
  at += buf.write(decisionId, at, 'utf8');
  if (at !== total) throw new Error(`CheckResponse encoding: wrote ${at} of ${total} bytes`);
  return buf;
}

/** Joins encoded fields into one message. */
export function join(parts: readonly Bytes[]): Buffer {
  return Buffer.concat(parts as Bytes[]);
}
