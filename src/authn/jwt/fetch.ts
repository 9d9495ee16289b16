import { redactUrl as redactUrlWith } from '../../util/redact-url';

/**
 * HTTP GET of JSON documents (JWKS, OpenID discovery) with a hard timeout, a size cap and the
 * response's Cache-Control max-age. Errors are plain Errors whose messages are safe to log: they
 * carry the redacted URL, never credentials or query strings.
 */

/** A key set or discovery document larger than this is hostile or broken; never buffer it. */
const MAX_BODY_BYTES = 1024 * 1024;

export interface FetchedJson {
  readonly body: unknown;
  /** `max-age` from Cache-Control, in seconds, when the provider sent one. */
  readonly maxAgeSeconds: number | undefined;
}

/** The URL as it may appear in logs: no userinfo, no query (some providers put keys there), no fragment. */
export const redactUrl = (url: string): string => redactUrlWith(url, { strict: true });

export function parseMaxAge(cacheControl: string | null): number | undefined {
  if (!cacheControl) return undefined;
  // no-store / no-cache mean "do not reuse": the caller's minimum TTL still applies.
  if (/(?:^|,)\s*no-(?:store|cache)\b/i.test(cacheControl)) return 0;
  const m = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(cacheControl);
  return m ? Number(m[1]) : undefined;
}

export async function fetchJson(url: string, timeoutMs: number, cancel?: AbortSignal): Promise<FetchedJson> {
  const timeout = AbortSignal.timeout(Math.max(1, Math.round(timeoutMs)));
  const signal = cancel ? AbortSignal.any([timeout, cancel]) : timeout;
  const where = redactUrl(url);
  const { target, headers } = splitCredentials(url);
  let res: Response;
  try {
    // No redirects: a key set must come from the configured origin, and following a 3xx would let
    // a provider (or whoever controls it) point this service at internal addresses (SSRF).
    res = await fetch(target, { method: 'GET', signal, headers, redirect: 'error' });
  } catch (err) {
    throw new Error(timeout.aborted ? `GET ${where} timed out after ${timeoutMs} ms` : `GET ${where} failed: ${describe(err)}`);
  }
  try {
    if (res.status !== 200) throw new Error(`GET ${where} returned HTTP ${res.status}`);
    const text = await readCapped(res, where);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new Error(`GET ${where} did not return JSON`);
    }
    return { body, maxAgeSeconds: parseMaxAge(res.headers.get('cache-control')) };
  } catch (err) {
    if (timeout.aborted) throw new Error(`GET ${where} timed out after ${timeoutMs} ms`);
    throw err;
  } finally {
    // Release the connection even when we bailed out before reading the whole body.
    if (!res.bodyUsed) await res.body?.cancel().catch(() => undefined);
  }
}

/**
 * fetch() refuses URLs carrying userinfo, yet `https://user:pass@idp/jwks` is a natural way to
 * configure a protected JWKS endpoint; send those credentials as HTTP Basic instead.
 */
function splitCredentials(url: string): { target: string; headers: Record<string, string> } {
  const headers: Record<string, string> = { accept: 'application/json, application/jwk-set+json' };
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { target: url, headers }; // fetch reports the invalid URL
  }
  if (!u.username && !u.password) return { target: url, headers };
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  headers['authorization'] = `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  u.username = '';
  u.password = '';
  return { target: u.toString(), headers };
}

async function readCapped(res: Response, where: string): Promise<string> {
  const declared = Number(res.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > MAX_BODY_BYTES) throw new Error(`GET ${where}: body too large`);
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.byteLength;
    if (total > MAX_BODY_BYTES) throw new Error(`GET ${where}: body too large`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const code = cause && typeof cause === 'object' && 'code' in cause ? String((cause as { code: unknown }).code) : undefined;
    return code ? `${err.message} (${code})` : err.message;
  }
  return String(err);
}

export interface Discovered {
  readonly jwksUri: string;
  readonly issuer: string;
}

/**
 * OpenID Connect discovery, memoised once it succeeds. A failure is not remembered: the next key
 * refresh (which already has backoff and coalescing) simply tries again.
 */
export function createDiscovery(oidcIssuer: string, timeoutMs: number): {
  get(cancel?: AbortSignal): Promise<Discovered>;
  current(): Discovered | undefined;
} {
  const docUrl = `${oidcIssuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let found: Discovered | undefined;
  return {
    current: () => found,
    async get(cancel) {
      if (found) return found;
      const { body } = await fetchJson(docUrl, timeoutMs, cancel);
      const doc = body && typeof body === 'object' ? (body as Record<string, unknown>) : {};
      const jwksUri = doc['jwks_uri'];
      if (typeof jwksUri !== 'string' || !/^https?:\/\//i.test(jwksUri)) {
        throw new Error(`GET ${redactUrl(docUrl)}: discovery document has no usable jwks_uri`);
      }
      // OIDC Discovery 1.0 §4.3: the document's issuer must be exactly the issuer it was fetched for
      // (a trailing slash aside), or an attacker-controlled document could name any issuer.
      const issuer = typeof doc['issuer'] === 'string' ? doc['issuer'] : '';
      if (issuer.replace(/\/+$/, '') !== oidcIssuer.replace(/\/+$/, '')) {
        throw new Error(`GET ${redactUrl(docUrl)}: discovery document issuer ${JSON.stringify(issuer.slice(0, 200))} does not match ORCHEO_AUTH_OIDC_ISSUER`);
      }
      found = { jwksUri, issuer };
      return found;
    },
  };
}
