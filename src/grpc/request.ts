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

function collectHeaders(http: Http): Map<string, string> {
  const out = new Map<string, string>();
  const h = http.headers;
  // for…in rather than Object.entries: no array of pairs per request (proto-loader objects are plain).
  if (h) for (const k in h) out.set(k.toLowerCase(), String(h[k]));
  // With `encode_raw_headers`, Envoy sends header_map instead (values possibly as raw bytes);
  // repeated headers are joined with a comma as HTTP allows.
  for (const h of http.header_map?.headers ?? []) {
    if (!h.key) continue;
    const k = h.key.toLowerCase();
    const v = h.raw_value && h.raw_value.length > 0 ? Buffer.from(h.raw_value).toString('latin1') : (h.value ?? '');
    const prev = out.get(k);
    out.set(k, prev === undefined ? v : `${prev},${v}`);
  }
  return out;
}

/** Envoy's CheckRequest as the pipeline's wire-neutral request. Total: any shape maps to something. */
export function fromCheckRequest(req: RawCheckRequest | null | undefined): RequestParts {
  const attrs = req?.attributes ?? undefined;
  const http = attrs?.request?.http ?? undefined;
  const headers = http ? collectHeaders(http) : new Map<string, string>();
  return {
    method: http?.method || headers.get(':method') || undefined,
    path: http?.path || headers.get(':path') || undefined,
    query: http?.query || undefined,
    headers,
    sourceAddress: attrs?.source?.address?.socket_address?.address || undefined,
    contextExtensions: attrs?.context_extensions ?? undefined,
  };
}
