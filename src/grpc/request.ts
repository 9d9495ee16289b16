import type { RequestParts } from '../pipeline/decision';

/**
 * The part of an Envoy CheckRequest the service reads, in the shape @grpc/proto-loader decodes it
 * (keepCase, oneofs). Every field may be absent: Envoy, Istio and hand-written clients all differ.
 */
export interface RawCheckRequest {
  attributes?: {
    source?: { address?: { socket_address?: { address?: string } } | null } | null;
    request?: {
      http?: {
        method?: string;
        headers?: Record<string, string> | null;
        header_map?: { headers?: Array<{ key?: string; value?: string; raw_value?: Buffer | Uint8Array }> | null } | null;
        path?: string;
        query?: string;
      } | null;
    } | null;
    context_extensions?: Record<string, string> | null;
  } | null;
}

type Http = NonNullable<NonNullable<NonNullable<RawCheckRequest['attributes']>['request']>['http']>;

/** One `header_map` entry, as either decoder reads it. */
export interface RawHeader {
  readonly key?: string | undefined;
  readonly value?: string | undefined;
  readonly raw?: Uint8Array | undefined;
}

/**
 * Lower-cased names, one value each. With `encode_raw_headers`, Envoy sends header_map instead
 * (values possibly as raw bytes); repeated headers are joined with a comma as HTTP allows.
 */
export function collectHeaders(h: ReadonlyMap<string, string> | Record<string, string> | null | undefined, list: readonly RawHeader[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (h instanceof Map) for (const [k, v] of h) out.set(k.toLowerCase(), String(v));
  // for…in rather than Object.entries: no array of pairs per request (proto-loader objects are plain).
  else if (h) for (const k in h) out.set(k.toLowerCase(), String((h as Record<string, string>)[k]));
  if (list) mergeHeaderList(out, list);
  return out;
}

/** header_map entries onto `out` (lower-cased names; a repeated name's values joined with a comma). */
export function mergeHeaderList(out: Map<string, string>, list: readonly RawHeader[]): void {
  for (const e of list) {
    if (!e.key) continue;
    const k = e.key.toLowerCase();
    const v = e.raw && e.raw.length > 0 ? Buffer.from(e.raw).toString('latin1') : (e.value ?? '');
    const prev = out.get(k);
    out.set(k, prev === undefined ? v : `${prev},${v}`);
  }
}

/** Empty strings are absent: Envoy, Istio and hand-written clients differ in what they leave unset. */
export function partsOf(headers: Map<string, string>, method: string | undefined, path: string | undefined, query: string | undefined, source: string | undefined, contextExtensions: Readonly<Record<string, string>> | null | undefined): RequestParts {
  return {
    method: method || headers.get(':method') || undefined,
    path: path || headers.get(':path') || undefined,
    query: query || undefined,
    headers,
    sourceAddress: source || undefined,
    contextExtensions: contextExtensions ?? undefined,
  };
}

const rawHeaders = (http: Http): RawHeader[] | undefined => http.header_map?.headers?.map((h) => ({ key: h.key, value: h.value, raw: h.raw_value }));

/** Envoy's CheckRequest (as proto-loader decodes it) as the pipeline's wire-neutral request. Total: any shape maps to something. */
export function fromCheckRequest(req: RawCheckRequest | null | undefined): RequestParts {
  const attrs = req?.attributes ?? undefined;
  const http = attrs?.request?.http ?? undefined;
  const headers = http ? collectHeaders(http.headers, rawHeaders(http)) : new Map<string, string>();
  return partsOf(headers, http?.method, http?.path, http?.query, attrs?.source?.address?.socket_address?.address, attrs?.context_extensions);
}
