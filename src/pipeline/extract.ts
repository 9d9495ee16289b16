import { AuthError, plainDeny } from '../errors/deny';
import { MAX_TOKEN_LENGTH } from '../util/limits';
import { isWebSocketUpgrade, type CheckInput } from './request';

export interface Credential {
  readonly token: string;
  readonly via: 'authorization' | 'websocket_protocol' | 'query';
  /** The query parameter that carried the token, removed from the upstream URL on allow. */
  readonly queryParam?: 'access_token' | 'token' | undefined;
}

const BEARER = /^bearer(?:\s+(.*))?$/is;

const QUERY_NAMES = ['access_token', 'token'] as const;

function decodeValue(raw: string): string | undefined {
  try {
    return decodeURIComponent(raw.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * Only the literal names count: Envoy removes query parameters by their raw name, so a
 * percent-encoded name (`access%5Ftoken`) would authenticate yet reach the upstream URL. The first
 * non-empty value of the first name in precedence order wins, as `URLSearchParams.get` did.
 */
function fromQuery(query: string): Credential | undefined {
  if (!query) return undefined;
  const pairs = query.split('&');
  for (const name of QUERY_NAMES) {
    for (const pair of pairs) {
      const eq = pair.indexOf('=');
      if ((eq < 0 ? pair : pair.slice(0, eq)) !== name || eq < 0) continue;
      const v = decodeValue(pair.slice(eq + 1));
      if (v) return { token: v, via: 'query', queryParam: name };
    }
  }
  return undefined;
}

/**
 * Phase 1, extract credentials, in the contract's precedence: Authorization Bearer; then for
 * WebSocket upgrades the `bearer.<token>` subprotocol, then `access_token`, then `token` in the query.
 * Returns undefined when no credential was presented; throws AuthError for a malformed one.
 */
export function extractCredential(input: CheckInput): Credential | undefined {
  const authz = input.headers.get('authorization');
  if (authz !== undefined && authz.trim() !== '') {
    const m = BEARER.exec(authz.trim());
    if (!m) throw new AuthError('auth.invalid_scheme', 'Authorization header must use the Bearer scheme');
    const token = (m[1] ?? '').trim();
    if (!token) throw plainDeny('auth.missing_token');
    return check({ token, via: 'authorization' });
  }
  if (!isWebSocketUpgrade(input)) return undefined;
  const protocols = input.headers.get('sec-websocket-protocol');
  if (protocols) {
    for (const p of protocols.split(',')) {
      const e = p.trim();
      if (e.toLowerCase().startsWith('bearer.') && e.length > 7) return check({ token: e.slice(7), via: 'websocket_protocol' });
    }
  }
  const q = fromQuery(input.query);
  return q ? check(q) : undefined;
}

function check(c: Credential): Credential {
  if (c.token.length > MAX_TOKEN_LENGTH) throw new AuthError('auth.invalid_token', undefined, { detail: `token longer than ${MAX_TOKEN_LENGTH} characters` });
  return c;
}
