import type { Server } from 'node:http';

export interface Listening<S extends Server> {
  readonly server: S;
  /** The bound port (the OS's choice when asked for 0). */
  readonly port: number;
  /** Stops accepting, closes idle keep-alive connections now and the rest after 2 s. */
  close(): Promise<void>;
}

/** Header and request timeouts every HTTP listener of the service uses, then listen. */
export async function listen<S extends Server>(server: S, host: string, port: number): Promise<Listening<S>> {
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  const bound = await new Promise<number>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const a = server.address();
      resolve(typeof a === 'object' && a ? a.port : port);
    });
  });
  return {
    server,
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections?.();
        setTimeout(() => server.closeAllConnections?.(), 2000).unref();
      }),
  };
}
