import { Writer } from 'protobufjs/minimal';
import type { Header } from '../pipeline/decision';

/**
 * A hand-written encoder for the few messages a CheckResponse is made of (field numbers from
 * proto/envoy/service/auth/v3/external_auth.proto, config/core/v3/base.proto, google/rpc/status.proto,
 * google/protobuf/struct.proto). It exists so that a response can be assembled from cached bytes plus
 * the per-request fields (decision id, deny body): a protobuf message's encoding is the concatenation
 * of its fields, and a map's entries are repeated fields. test/wire-compat.test.ts decodes its output
 * with the server's deserializer and with Envoy's canonical schema.
 *
 * What must NOT be concatenated: two occurrences of a singular message field (protobufjs keeps only
 * the last one instead of merging them), hence `struct()` takes every entry at once.
 */
export type Bytes = Uint8Array;

const LEN = 2;
const tag = (field: number, wireType: number): number => (field << 3) | wireType;

/** CheckResponse field numbers. */
export const RESPONSE = { status: 1, deniedResponse: 2, okResponse: 3, dynamicMetadata: 4 } as const;

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

/** DeniedHttpResponse.body (field 3). */
export function deniedBody(body: string): Bytes {
  return Writer.create().uint32(tag(3, LEN)).string(body).finish();
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

/** The tag and length of a length-delimited field of `length` bytes. */
function lengthPrefix(field: number, length: number): Bytes {
  return Writer.create().uint32(tag(field, LEN)).uint32(length).finish();
}

/** A length-delimited field whose content is the concatenation of `parts` (each a run of whole fields). */
export function messageField(field: number, parts: readonly Bytes[]): Bytes[] {
  let n = 0;
  for (const p of parts) n += p.length;
  return [lengthPrefix(field, n), ...parts];
}

/** Joins encoded fields into one message. */
export function join(parts: readonly Bytes[]): Buffer {
  return Buffer.concat(parts as Bytes[]);
}
