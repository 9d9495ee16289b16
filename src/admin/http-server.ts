import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';
import { HTTP_STATUS } from '../errors/api';
import { normalizeIp } from '../ratelimit/client-ip';
import { listen, type Listening } from '../util/listen';

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void> | void;

export interface Route {
  readonly method: string;
  /** Exact path, or a prefix ending with `/*`. */
  readonly path: string;
  readonly handler: Handler;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export interface HttpServerOptions {
  readonly host: string;
  readonly port: number;
  /** PEM files; re-read when they change, so a renewed certificate needs no restart. */
  readonly tls?: { readonly cert: string; readonly key: string } | undefined;
  readonly routes: () => readonly Route[];
  readonly logger: Logger;
  /**
   * The caller's address from the TCP peer and its `x-forwarded-for` (see resolveHttpClientIp).
   * Absent: the TCP peer, never the header.
   */
  readonly clientIp?: ((peer: string | undefined, xForwardedFor: string | undefined) => string) | undefined;
}

const clientIps = new WeakMap<IncomingMessage, string>();

/** The address the HTTP side attributes this request to (rate limits, audit). */
export function requestClientIp(req: IncomingMessage): string {
  return clientIps.get(req) ?? normalizeIp(req.socket.remoteAddress) ?? 'unknown';
}

/**
 * Past this many bytes (or this long) of a body nobody reads, the connection is dropped: a client
 * that keeps sending after its answer is ready gets a reset instead of holding the server.
 */
const DRAIN_MAX_BYTES = 16 * 1024 * 1024;
const DRAIN_MAX_MS = 10_000;

/**
 * Holds an early answer (413, 401…) until the rest of the request body was read and discarded.
 * Node closes a `connection: close` socket (urllib sends that header) as soon as the answer is
 * written; closing with unread data makes the kernel send a reset, and a client still writing its
 * body then loses the answer it never got to read.
 */
function answerAfterBody(req: IncomingMessage, res: ServerResponse): void {
  const end = res.end;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    if (req.complete || req.destroyed) return (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    let drained = 0;
    let answered = false;
    const answer = (): void => {
      if (answered) return;
      answered = true;
      clearTimeout(timer);
      (end as (...a: unknown[]) => ServerResponse).apply(this, args);
    };
    const giveUp = (): void => {
      if (!this.headersSent) this.setHeader('connection', 'close');
      this.once('finish', () => req.socket.destroy());
      answer();
    };
    const timer = setTimeout(giveUp, DRAIN_MAX_MS);
    timer.unref();
    req.on('data', (chunk: Buffer) => {
      drained += chunk.length;
      if (drained > DRAIN_MAX_BYTES) giveUp();
    });
    req.once('end', answer);
    req.once('close', () => clearTimeout(timer));
    req.resume();
    return this;
  } as ServerResponse['end'];
}

/** The HTTP listener: health, readiness, metrics and the admin API. Errors become JSON, never a crash. */
export async function startHttpServer(opts: HttpServerOptions): Promise<Listening<Server>> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, HTTP_STATUS['http.bad_request'], { message: 'Malformed request URL', code: 'http.bad_request' });
    }
    const routes = opts.routes();
    const forPath = routes.filter((r) => r.path === url.pathname || (r.path.endsWith('/*') && url.pathname.startsWith(r.path.slice(0, -1))) || r.path === `${url.pathname}/*`);
    const route = forPath.find((r) => r.method === req.method) ?? (req.method === 'HEAD' ? forPath.find((r) => r.method === 'GET') : undefined);
    if (!route) {
      if (forPath.length > 0) return sendJson(res, HTTP_STATUS['http.method_not_allowed'], { message: `Method ${req.method} not allowed`, code: 'http.method_not_allowed' }, { allow: [...new Set(forPath.map((r) => r.method))].join(', ') });
      return sendJson(res, HTTP_STATUS['http.not_found'], { message: 'Not found', code: 'http.not_found' });
    }
    await route.handler(req, res, url);
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    if (opts.clientIp) {
      const xff = req.headers['x-forwarded-for'];
      clientIps.set(req, opts.clientIp(req.socket.remoteAddress, Array.isArray(xff) ? xff.join(',') : xff));
    }
    answerAfterBody(req, res);
    handle(req, res).catch((err: unknown) => {
      opts.logger.error({ err: (err as Error)?.message, path: req.url?.split('?')[0] }, 'http handler failed');
      if (!res.headersSent) sendJson(res, HTTP_STATUS['http.internal'], { message: 'Internal error', code: 'http.internal' });
      else res.destroy();
    });
  };
  const tls = opts.tls;
  const server = tls ? createHttps({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) }, listener) : createHttp(listener);
  if (tls) {
    const reload = (): void => {
      try {
        (server as HttpsServer).setSecureContext({ cert: readFileSync(tls.cert), key: readFileSync(tls.key) });
        opts.logger.info({ cert: tls.cert }, 'HTTP TLS certificate reloaded');
      } catch (err) {
        opts.logger.error({ err: (err as Error).message }, 'HTTP TLS certificate reload failed; keeping the previous one');
      }
    };
    for (const f of [tls.cert, tls.key]) watchFile(f, { interval: 1000, persistent: false }, (cur, prev) => cur.mtimeMs !== prev.mtimeMs && reload());
    server.on('close', () => [tls.cert, tls.key].forEach((f) => unwatchFile(f)));
  }
  return listen(server, opts.host, opts.port);
}
