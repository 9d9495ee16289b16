import type { RequestParts } from '../pipeline/decision';
import { collectHeaders, mergeHeaderList, partsOf } from './request';
import { latin1, nameHadUpper, readName, readString } from './wire-strings';

/**
 * A v3 CheckRequest read straight into what the pipeline uses, walking only the fields it reads
 * (field numbers from proto/envoy/service/auth/v3/attribute_context.proto and
 * config/core/v3/{address,base}.proto) and skipping the rest by wire type:
 *
 *   CheckRequest.attributes = 1 → AttributeContext
 *     source = 1 → Peer.address = 1 → Address.socket_address = 1 → SocketAddress.address = 2
 *     request = 4 → Request.http = 2 → HttpRequest {method = 2, headers = 3 (map), path = 4, query = 7,
 *                                                  header_map = 13 → HeaderMap.headers = 1 {key, value, raw_value}}
 *     context_extensions = 10 (map)
 *
 * proto-loader's generic decoder built an object for every field Envoy sends (the destination peer,
 * TLS session, metadata, …) and then converted it again with toObject: under load that was more
 * CPU than the whole decision. Semantics are protobufjs' own, so both readings agree (the test
 * decodes random requests both ways): the last occurrence of a singular field wins, a repeated map
 * key keeps the last value, and bytes that are not a valid message throw (grpc-js answers INTERNAL).
 * One cursor over the buffer, no closure or reader object per message: the first version, written
 * over protobufjs' Reader with a callback per message, allocated more than proto-loader did.
 */

const LEN = 2;
/** The tag of length-delimited field `n` (every field the walker reads is one). */
const field = (n: number): number => (n << 3) | LEN;
const F1 = field(1);
const F2 = field(2);
const F3 = field(3);
const F4 = field(4);
const F10 = field(10);

interface RawEntry {
  key: string;
  value: string;
  raw?: Uint8Array;
}

interface Http {
  method?: string;
  path?: string;
  query?: string;
  headers: Map<string, string>;
}
// The cursor: decoding is synchronous and never re-entered, so one module-level position is safe.
const EMPTY = Buffer.alloc(0);
let buf: Buffer = EMPTY;
let pos = 0;
/**
 * `buf` as latin1 (one native call per request), for the short strings; '' for a request over
 * 16 KiB (a body Envoy forwards would be copied for nothing: its strings are then read one by one).
 */
let text = '';
const TEXT_MAX = 16 * 1024;

function fail(what: string): never {
  throw new RangeError(`invalid CheckRequest: ${what} at byte ${pos}`);
}

/** A varint as protobufjs' uint32 reads it (the low 32 bits), at most 10 bytes. */
function varint(end: number): number {
  let x = 0;
  for (let shift = 0; shift < 70; shift += 7) {
    if (pos >= end) fail('truncated varint');
    const b = buf[pos++]!;
    if (shift < 32) x |= (b & 0x7f) << shift;
    if ((b & 0x80) === 0) return x >>> 0;
  }
  return fail('varint longer than 10 bytes');
}

/** The end offset of the length-delimited field at the cursor, checked against its parent's end. */
function sub(end: number): number {
  const len = varint(end);
  const to = pos + len;
  if (to > end) fail('length past the end of its message');
  return to;
}

function string(end: number): string {
  const to = sub(end);
  const from = pos;
  pos = to;
  return readString(buf, text, from, to);
}

/** A header name (lower-case ones come from the name table): `nameHadUpper` tells whether to lower-case it. */
function name(end: number): string {
  const to = sub(end);
  const from = pos;
  pos = to;
  return readName(buf, text, from, to);
}

function skip(wire: number, end: number, depth = 0): void {
  if (wire === 0) varint(end);
  else if (wire === 1) pos += 8;
  else if (wire === LEN) pos = sub(end);
  else if (wire === 5) pos += 4;
  else if (wire === 3) {
    // A group (proto2): skip fields until its end-group tag.
    if (depth > 32) fail('groups nested too deep');
    for (;;) {
      const tag = varint(end);
      if ((tag & 7) === 4) break;
      skip(tag & 7, end, depth + 1);
    }
  } else fail(`wire type ${wire}`);
  if (pos > end) fail('field past the end of its message');
}

/** The next field's tag inside a message ending at `end`. */
function tag(end: number): number {
  const t = varint(end);
  if (t >>> 3 === 0) fail('field number 0');
  return t;
}

function mapEntry(end: number): [string, string] {
  const to = sub(end);
  let key = '';
  let value = '';
  while (pos < to) {
    const t = tag(to);
    if (t === F1) key = string(to);
    else if (t === F2) value = string(to);
    else skip(t & 7, to);
  }
  return [key, value];
}

/** Peer.address = 1 → Address.socket_address = 1 → SocketAddress.address = 2 (undefined when a level is absent). */
function nested(end: number, path: readonly number[], depth: number): string | undefined {
  const to = sub(end);
  let found: string | undefined;
  const want = field(path[depth]!);
  while (pos < to) {
    const t = tag(to);
    if (t !== want) skip(t & 7, to);
    else found = depth === path.length - 1 ? string(to) : nested(to, path, depth + 1);
  }
  return found;
}
const SOURCE_ADDRESS = [1, 1, 2];

function headerValue(end: number): RawEntry {
  const to = sub(end);
  const h: RawEntry = { key: '', value: '' };
  while (pos < to) {
    const t = tag(to);
    if (t === F1) h.key = string(to);
    else if (t === F2) h.value = string(to);
    else if (t === F3) {
      const at = sub(to);
      h.raw = buf.subarray(pos, at);
      pos = at;
    } else skip(t & 7, to);
  }
  return h;
}

/**
 * HttpRequest, its headers map read straight into the lower-cased map the pipeline uses. A name
 * with an upper-case letter (rare: Envoy lower-cases them) switches to the exact two-step reading
 * (a case-sensitive map first, then lower-cased), so `A` then `a` then `A` resolves as protobufjs +
 * collectHeaders would. header_map entries are merged after the map, whatever the wire order.
 */
function httpRequest(end: number): Http {
  const to = sub(end);
  const headers = new Map<string, string>();
  let exact = false;
  let list: RawEntry[] | undefined;
  const http: Http = { headers };
  while (pos < to) {
    const t = tag(to);
    if ((t & 7) !== LEN) {
      skip(t & 7, to);
      continue;
    }
    switch (t >>> 3) {
      case 2:
        http.method = string(to);
        break;
      case 3: {
        const at = sub(to);
        let key = '';
        let value = '';
        let keyUpper = false;
        while (pos < at) {
          const u = tag(at);
          if (u === F1) {
            key = name(at);
            keyUpper = nameHadUpper;
          } else if (u === F2) value = string(at);
          else skip(u & 7, at);
        }
        // Until then every name was lower-case already: the map so far is the same either way.
        if (keyUpper) exact = true;
        headers.set(key, value);
        break;
      }
      case 4:
        http.path = string(to);
        break;
      case 7:
        http.query = string(to);
        break;
      case 13: {
        const at = sub(to);
        list = [];
        while (pos < at) {
          const u = tag(at);
          if (u === F1) list.push(headerValue(at));
          else skip(u & 7, at);
        }
        break;
      }
      default:
        skip(LEN, to);
    }
  }
  if (exact) http.headers = collectHeaders(headers, list);
  else if (list) mergeHeaderList(headers, list);
  return http;
}

export function decodeCheckRequest(bytes: Uint8Array): RequestParts {
  buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  pos = 0;
  text = buf.length <= TEXT_MAX ? latin1(buf) : '';
  try {
    return walk();
  } finally {
    // The request (its token included) is not kept alive by the module after the call.
    buf = EMPTY;
    text = '';
  }
}

function walk(): RequestParts {
  const end = buf.length;
  let source: string | undefined;
  let http: Http | undefined;
  let ext: Record<string, string> | undefined;
  while (pos < end) {
    const t = tag(end);
    if (t !== F1) {
      skip(t & 7, end);
      continue;
    }
    // attributes: the last occurrence wins, as protobufjs reads it.
    const to = sub(end);
    source = undefined;
    http = undefined;
    ext = undefined;
    while (pos < to) {
      const u = tag(to);
      if (u === F1) source = nested(to, SOURCE_ADDRESS, 0);
      else if (u === F4) {
        // Request.http = 2 (the last one wins).
        const at = sub(to);
        let last: Http | undefined;
        while (pos < at) {
          const w = tag(at);
          if (w === F2) last = httpRequest(at);
          else skip(w & 7, at);
        }
        http = last;
      } else if (u === F10) {
        const [k, v] = mapEntry(to);
        (ext ??= {})[k] = v;
      } else skip(u & 7, to);
    }
  }
  const headers = http ? http.headers : new Map<string, string>();
  return partsOf(headers, http?.method, http?.path, http?.query, source, ext);
}

