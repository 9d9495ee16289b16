import { InvalidPathError, normalizePath } from '../authz/normalize';
import { AuthError } from '../errors/deny';
import type { RequestParts } from './decision';

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
export function toCheckInput(req: RequestParts): CheckInput {
  const rawPath = req.path || '/';
  const q = rawPath.indexOf('?');
  let query = q >= 0 ? rawPath.slice(q + 1) : '';
  const hash = query.indexOf('#');
  if (hash >= 0) query = query.slice(0, hash);
  if (!query && req.query) query = req.query.replace(/^\?/, '');
  return {
    method: (req.method || 'GET').toUpperCase(),
    path: policyPath(rawPath),
    query,
    headers: req.headers,
    sourceAddress: req.sourceAddress || undefined,
    contextExtensions: req.contextExtensions ?? undefined,
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
