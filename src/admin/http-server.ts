import { createServer as createHttp, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync, unwatchFile, watchFile } from 'node:fs';
import { createServer as createHttps, type Server as HttpsServer } from 'node:https';
import type { Logger } from 'pino';

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
}

/** The HTTP listener: health, readiness, metrics and the admin API. Errors become JSON, never a crash. */
export async function startHttpServer(opts: HttpServerOptions): Promise<{ server: Server; port: number; close(): Promise<void> }> {
  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, 400, { message: 'Malformed request URL', code: 'http.bad_request' });
    }
    const routes = opts.routes();
    const forPath = routes.filter((r) => r.path === url.pathname || (r.path.endsWith('/*') && url.pathname.startsWith(r.path.slice(0, -1))) || r.path === `${url.pathname}/*`);
    const route = forPath.find((r) => r.method === req.method) ?? (req.method === 'HEAD' ? forPath.find((r) => r.method === 'GET') : undefined);
    if (!route) {
      if (forPath.length > 0) return sendJson(res, 405, { message: `Method ${req.method} not allowed`, code: 'http.method_not_allowed' }, { allow: [...new Set(forPath.map((r) => r.method))].join(', ') });
      return sendJson(res, 404, { message: 'Not found', code: 'http.not_found' });
    }
    await route.handler(req, res, url);
  };
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res).catch((err: unknown) => {
      opts.logger.error({ err: (err as Error)?.message, path: req.url?.split('?')[0] }, 'http handler failed');
      if (!res.headersSent) sendJson(res, 500, { message: 'Internal error', code: 'http.internal' });
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
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const port = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : opts.port);
    });
  });
  return {
    server,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      }),
  };
}
