/**
 * A TCP proxy a test controls, for fault injection between the service and a backend (Postgres,
 * Redis, a JWKS provider): listens on 127.0.0.1:0 and forwards every connection to `target`.
 *
 * - cut():      destroys every open connection (both sides, with RST) and refuses new ones
 *               (accepted then reset at once, so clients fail fast instead of timing out);
 * - delay(ms):  holds every chunk, in both directions, `ms` before forwarding it (order kept);
 * - restore():  back to plain forwarding (delay 0, new connections accepted again).
 *
 * The listening port never changes, so a URL pointing at the proxy stays valid across cut/restore.
 */
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  readonly host: string;
  /** Connections accepted and forwarded since start (refused ones not counted). */
  readonly accepted: () => number;
  /** Connections currently open (client side). */
  readonly open: () => number;
  /** Connection attempts refused while cut. */
  readonly refused: () => number;
  cut(): void;
  delay(ms: number): void;
  restore(): void;
  readonly isCut: () => boolean;
  close(): Promise<void>;
}

function kill(s: Socket): void {
  if (s.destroyed) return;
  // RST rather than FIN: what a crashed host or a dropped route looks like to the peer.
  if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
  else s.destroy();
}

/** Forwards `from` → `to`, each chunk held `delayMs()` (read per chunk) with order preserved. */
function pipeDelayed(from: Socket, to: Socket, delayMs: () => number, timers: Set<NodeJS.Timeout>): void {
  let queue = Promise.resolve();
  from.on('data', (chunk: Buffer) => {
    const ms = delayMs();
    if (ms <= 0) {
      // Keep order with chunks still queued behind an earlier delay.
      queue = queue.then(() => {
        if (!to.destroyed) to.write(chunk);
      });
      return;
    }
    queue = queue.then(
      () =>
        new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            timers.delete(t);
            if (!to.destroyed) to.write(chunk);
            resolve();
          }, ms);
          timers.add(t);
        }),
    );
  });
  from.on('end', () => {
    void queue.then(() => {
      if (!to.destroyed) to.end();
    });
  });
}

export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const targetHost = target.host ?? '127.0.0.1';
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let isCut = false;
  let delayMs = 0;
  let accepted = 0;
  let refused = 0;
  let pairs = 0;

  const server: Server = createServer((client) => {
    if (isCut) {
      refused += 1;
      client.on('error', () => undefined);
      kill(client);
      return;
    }
    accepted += 1;
    pairs += 1;
    const upstream = connect({ host: targetHost, port: target.port });
    sockets.add(client);
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let closed = false;
    const closeBoth = (): void => {
      if (closed) return;
      closed = true;
      pairs -= 1;
      kill(client);
      kill(upstream);
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    pipeDelayed(client, upstream, () => delayMs, timers);
    pipeDelayed(upstream, client, () => delayMs, timers);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  const dropAll = (): void => {
    for (const t of timers) clearTimeout(t);
    timers.clear();
    for (const s of [...sockets]) kill(s);
    sockets.clear();
  };

  return {
    port,
    host: '127.0.0.1',
    accepted: () => accepted,
    open: () => pairs,
    refused: () => refused,
    isCut: () => isCut,
    cut() {
      isCut = true;
      dropAll();
    },
    delay(ms: number) {
      delayMs = Math.max(0, ms);
    },
    restore() {
      isCut = false;
      delayMs = 0;
    },
    async close() {
      isCut = true;
      dropAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `url` with its host and port replaced by the proxy's (everything else, options included, kept). */
export function viaProxy(url: string, proxy: { host: string; port: number }): string {
  const u = new URL(url);
  u.hostname = proxy.host;
  u.port = String(proxy.port);
  return u.toString();
}
