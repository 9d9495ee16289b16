import { createServer, ServerResponse, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { CheckFn, Decision } from '../pipeline/decision';
import { AuthError } from '../errors/deny';
import { denyHttp } from '../pipeline/deny-http';
import { listen, type Listening } from '../util/listen';
import { BadAuthzRequest, toRequestParts } from './request';

/**
 * Nothing here reads a body: the call is decided on its headers. A proxy may still forward one
 * (Envoy `with_request_body`); past this many bytes the connection is reset instead of drained.
 */
export const MAX_DRAINED_BODY = 64 * 1024;

export interface HttpAuthzOptions {
  readonly host: string;
  readonly port: number;
  readonly check: CheckFn;
  readonly pathPrefix: string;
  /** The caller's address from the TCP peer and its x-forwarded-for (resolveHttpClientIp). */
  readonly clientIp: (peer: string | undefined, xForwardedFor: string | undefined) => string;
  readonly logger: Logger;
}

export type HttpAuthzServer = Listening<Server>;

type Headers = Array<[string, string]>;

/**
 * nginx `auth_request` can pass neither the status (other than 401/403) nor the body of a deny;
 * it can copy a response header into a variable. With `deny_body=header` on the authorization
 * URL the JSON body is repeated in this header (non-ASCII escaped, so it is a valid header value).
 */
export const DENY_BODY_HEADER = 'x-orcheo-deny-body';

/**
 * Node refuses header values outside Latin-1; an identity value (a JWT `sub`) may hold any Unicode.
 * Sent as its UTF-8 bytes, which is what the gRPC answer carries and what proxies copy byte for byte.
 */
const asLatin1 = (v: string): string => (/[^\u0000-\u00ff]/.test(v) ? Buffer.from(v, 'utf8').toString('latin1') : v);

function answer(res: ServerResponse, status: number, headers: Headers, body: string): void {
  const flat: string[] = [];
  for (const [k, v] of headers) flat.push(k, asLatin1(v));
  flat.push('content-length', String(Buffer.byteLength(body)));
  res.writeHead(status, flat);
  res.end(body);
}

/** The answer when mapping or answering failed unexpectedly: a deny with a stable code, never an allow. */
function unavailable(res: ServerResponse): void {
  if (res.headersSent) return void res.destroy();
  const deny = denyHttp(new AuthError('auth.backend_unavailable'), false, undefined);
  answer(res, deny.status, deny.headers.map(([k, v]) => [k, v]), deny.body);
}

function denyBodyHeader(wanted: boolean, headers: Headers, body: string): void {
  if (wanted) headers.push([DENY_BODY_HEADER, body.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)]);
}

/** Envoy http_service removes the upstream request headers this response header lists. */
const ENVOY_HEADERS_TO_REMOVE = 'x-envoy-auth-headers-to-remove';

function respond(res: ServerResponse, d: Decision, style: { bodyInHeader: boolean; envoy: boolean }): void {
  if (d.allow) {
    const headers: Headers = d.headers.map(([k, v]) => [k, v]);
    headers.push(['cache-control', 'no-store']);
    // Forward-auth proxies overwrite the named identity headers; only Envoy can drop the rest.
    if (style.envoy && d.headersToRemove.length > 0) headers.push([ENVOY_HEADERS_TO_REMOVE, d.headersToRemove.join(',')]);
    return answer(res, 200, headers, '');
  }
  const deny = denyHttp(d.error, d.tokenPresented, d.requestId);
  const headers: Headers = deny.headers.map(([k, v]) => [k, v]);
  denyBodyHeader(style.bodyInHeader, headers, deny.body);
  answer(res, deny.status, headers, deny.body);
}

/** A body beyond the bound resets the connection; a small one is discarded so keep-alive works. */
function boundBody(req: IncomingMessage): void {
  // Most calls have no body (nginx sends none with proxy_pass_request_body off): no listener then.
  if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return;
  let seen = 0;
  req.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > MAX_DRAINED_BODY) req.socket.destroy();
  });
}

const wantsBodyHeader = (target: string | undefined): boolean => /[?&]deny_body=header(?:&|$)/.test(target ?? '');

/**
 * The HTTP authorization interface: every call is one Check through the same CheckFn as the gRPC
 * server. Errors become a JSON answer, never an allow and never a crash.
 */
export async function startHttpAuthzServer(opts: HttpAuthzOptions): Promise<HttpAuthzServer> {
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    boundBody(req);
    const xff = req.headers['x-forwarded-for'];
    const clientIp = opts.clientIp(req.socket.remoteAddress, Array.isArray(xff) ? xff.join(',') : xff);
    let parts;
    try {
      parts = toRequestParts(req, { pathPrefix: opts.pathPrefix, clientIp });
    } catch (err) {
      if (!(err instanceof BadAuthzRequest)) opts.logger.error({ err: (err as Error)?.message }, 'http authz request mapping failed');
      const body = JSON.stringify({ message: err instanceof BadAuthzRequest ? err.message : 'Request cannot be read', code: 'auth.invalid_request' });
      const headers: Headers = [['content-type', 'application/json'], ['cache-control', 'no-store']];
      denyBodyHeader(wantsBodyHeader(req.url), headers, body);
      return answer(res, 400, headers, body);
    }
    // Only a forward-auth call's own URL is the proxy's configuration; in Envoy style it is the client's.
    const forwardAuth = req.headers['x-forwarded-uri'] !== undefined || req.headers['x-original-uri'] !== undefined;
    const bodyInHeader = forwardAuth && wantsBodyHeader(req.url);
    opts.check(parts)
      .then((d) => respond(res, d, { bodyInHeader, envoy: !forwardAuth }))
      .catch((err: unknown) => {
        // CheckFn never rejects and respond only writes; if either ever throws, still a deny.
        opts.logger.error({ err: (err as Error)?.message }, 'http authz check failed');
        unavailable(res);
      });
  };
  const server = createServer(handle);
  // A proxy may forward a WebSocket handshake as is (Caddy does): decide it like any request and
  // answer with a plain response on the socket, never switching protocols.
  server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    res.on('finish', () => socket.end());
    socket.on('error', () => socket.destroy());
    handle(req, res);
  });
  return listen(server, opts.host, opts.port);
}
