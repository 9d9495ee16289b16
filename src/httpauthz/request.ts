import type { IncomingMessage } from 'node:http';
import type { RequestParts } from '../pipeline/decision';

/** nginx and Caddy forward the request target whole; 8 KiB is nginx's default request-line bound. */
export const MAX_FORWARDED_URI = 8 * 1024;

/**
 * Headers of the authorization call that describe the call itself, not the checked request, so
 * they never reach the pipeline: hop-by-hop ones, the body framing of the call, and the forwarding
 * headers this module has already read (`x-forwarded-for` above all: the client address is resolved
 * here against ORCHEO_AUTH_TRUSTED_PROXIES, and the pipeline must not re-resolve it with its gRPC
 * rule). `upgrade` stays: it is how a WebSocket handshake is recognised for query-string tokens.
 */
const CALL_HEADERS = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'content-length', 'expect',
  'x-forwarded-for', 'x-forwarded-uri', 'x-original-uri', 'x-forwarded-method', 'x-original-method', 'x-forwarded-host',
]);

/** The only route hints a forward-auth call may carry, and the context extension each one sets. */
const HINTS: Readonly<Record<string, string>> = { auth: 'auth', scopes: 'required_scopes', workspace: 'required_workspace' };

export class BadAuthzRequest extends Error {}

export interface ParseOptions {
  readonly pathPrefix: string;
  /** The resolved client address (TCP peer, or x-forwarded-for from a trusted proxy). */
  readonly clientIp: string;
}

/** The headers that say what is checked: each must come once, and the two spellings must agree. */
const SINGLE = new Set(['x-forwarded-uri', 'x-original-uri', 'x-forwarded-method', 'x-original-method', 'x-forwarded-host']);

/** Repeated headers joined with commas, as the gRPC side does; names lower-cased. */
function headerMap(raw: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase();
    const prev = out.get(k);
    if (prev !== undefined && SINGLE.has(k)) throw new BadAuthzRequest(`${k} sent more than once`);
    out.set(k, prev === undefined ? raw[i + 1]! : `${prev},${raw[i + 1]!}`);
  }
  return out;
}

/**
 * One of two spellings. Both present and different is refused: a proxy sets one of them, and a
 * client copy of the other that slipped through must not get to choose what is checked.
 */
function either(all: ReadonlyMap<string, string>, a: string, b: string): string | undefined {
  const x = all.get(a);
  const y = all.get(b);
  if (x !== undefined && y !== undefined && x !== y) throw new BadAuthzRequest(`${a} and ${b} disagree`);
  return x ?? y;
}

// Control characters and spaces have no place in a request target; a proxy that forwards one is
// forwarding something it did not parse, and guessing what it meant could open a route.
// eslint-disable-next-line no-control-regex
const BAD_URI = /[\u0000-\u0020\u007f-\uffff]/;

function forwardedUri(v: string): string {
  if (v.length === 0) throw new BadAuthzRequest('empty forwarded URI');
  if (v.length > MAX_FORWARDED_URI) throw new BadAuthzRequest(`forwarded URI longer than ${MAX_FORWARDED_URI} characters`);
  if (!v.startsWith('/')) throw new BadAuthzRequest('forwarded URI must start with /');
  if (BAD_URI.test(v)) throw new BadAuthzRequest('forwarded URI contains a space, a control or a non-ASCII character');
  return v;
}

function hints(callTarget: string): Record<string, string> | undefined {
  const q = callTarget.indexOf('?');
  if (q < 0) return undefined;
  let out: Record<string, string> | undefined;
  for (const [k, v] of new URLSearchParams(callTarget.slice(q + 1))) {
    const ext = HINTS[k];
    if (ext !== undefined) (out ??= {})[ext] = v;
  }
  return out;
}

const METHOD = /^[A-Za-z]{1,20}$/;

/**
 * The authorization call as the pipeline's request. Forward-auth style when the call carries
 * `x-forwarded-uri` / `x-original-uri` (nginx, Caddy, Traefik); Envoy `http_service` style
 * otherwise. Throws BadAuthzRequest for a call that cannot be read; never guesses.
 */
export function toRequestParts(req: IncomingMessage, opts: ParseOptions): RequestParts {
  const all = headerMap(req.rawHeaders);
  const headers = new Map<string, string>();
  for (const [k, v] of all) if (!CALL_HEADERS.has(k)) headers.set(k, v);
  const uri = either(all, 'x-forwarded-uri', 'x-original-uri');
  const target = req.url ?? '/';
  if (uri !== undefined) {
    const method = either(all, 'x-forwarded-method', 'x-original-method') ?? 'GET';
    if (!METHOD.test(method)) throw new BadAuthzRequest('forwarded method is not an HTTP method token');
    const host = all.get('x-forwarded-host');
    if (host !== undefined) {
      headers.set('host', host);
      headers.set(':authority', host);
    }
    return { method, path: forwardedUri(uri), headers, sourceAddress: opts.clientIp, contextExtensions: hints(target) };
  }
  let path = target;
  if (opts.pathPrefix) {
    // Only a whole segment is a prefix match: with prefix /authz, /authzfoo is not /foo.
    const p = opts.pathPrefix;
    if (path === p) path = '/';
    else if (path.startsWith(p) && (path[p.length] === '/' || path[p.length] === '?')) path = path.slice(p.length);
    else throw new BadAuthzRequest(`path does not start with the prefix ${p}`);
    if (path.startsWith('?')) path = `/${path}`;
  }
  if (!path.startsWith('/')) throw new BadAuthzRequest('request target must start with /');
  return { method: req.method, path, headers, sourceAddress: opts.clientIp };
}
