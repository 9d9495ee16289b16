import { InvalidPathError, normalizePath } from '../authz/normalize';
import { AuthError } from './codes';

/**
 * The part of an Envoy CheckRequest the pipeline reads, in the shape @grpc/proto-loader decodes it
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

/** The normalised view every phase works on. */
export interface CheckInput {
  readonly method: string;
  /** Normalised path, without query string: what the policy matches. */
  readonly path: string;
  /** Raw query string without `?` (may be empty). */
  readonly query: string;
  /** Lower-cased header names. */
  readonly headers: ReadonlyMap<string, string>;
  readonly sourceAddress: string | undefined;
  readonly contextExtensions: Readonly<Record<string, string>> | undefined;
}

function collectHeaders(http: NonNullable<NonNullable<NonNullable<RawCheckRequest['attributes']>['request']>['http']>): Map<string, string> {
  const out = new Map<string, string>();
  if (http.headers) for (const [k, v] of Object.entries(http.headers)) out.set(k.toLowerCase(), String(v));
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

/** The policy's view of the path; one it cannot read unambiguously is `auth.invalid_request`. */
function policyPath(rawPath: string): string {
  try {
    return normalizePath(rawPath);
  } catch (err) {
    if (err instanceof InvalidPathError) throw new AuthError('auth.invalid_request', undefined, { detail: err.message });
    throw err;
  }
}

/** Throws AuthError(`auth.invalid_request`) for a path the policy cannot read unambiguously. */
export function toCheckInput(req: RawCheckRequest | null | undefined): CheckInput {
  const attrs = req?.attributes ?? undefined;
  const http = attrs?.request?.http ?? undefined;
  const headers = http ? collectHeaders(http) : new Map<string, string>();
  const rawPath = http?.path || headers.get(':path') || '/';
  const q = rawPath.indexOf('?');
  let query = q >= 0 ? rawPath.slice(q + 1) : '';
  const hash = query.indexOf('#');
  if (hash >= 0) query = query.slice(0, hash);
  if (!query && http?.query) query = http.query.replace(/^\?/, '');
  return {
    method: (http?.method || headers.get(':method') || 'GET').toUpperCase(),
    path: policyPath(rawPath),
    query,
    headers,
    sourceAddress: attrs?.source?.address?.socket_address?.address || undefined,
    contextExtensions: attrs?.context_extensions ?? undefined,
  };
}

/** A CORS preflight: browsers never send credentials on it, so it is allowed in every mode. */
export function isCorsPreflight(input: CheckInput): boolean {
  return input.method === 'OPTIONS' && input.headers.has('origin') && input.headers.has('access-control-request-method');
}

export function isWebSocketUpgrade(input: CheckInput): boolean {
  const upgrade = input.headers.get('upgrade');
  if (upgrade && upgrade.toLowerCase().split(/\s*,\s*/).includes('websocket')) return true;
  // HTTP/2 and HTTP/3 WebSockets use extended CONNECT (RFC 8441).
  return input.method === 'CONNECT' && input.headers.get(':protocol')?.toLowerCase() === 'websocket';
}
