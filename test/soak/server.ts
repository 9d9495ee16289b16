/**
 * `serve` for leak tests: the real service (startApp with the admin routes, configured from the
 * environment exactly like `orcheo-authz serve`) plus one test-only route, GET /debug/stats, which
 * runs a full GC (when started with `node --expose-gc`) and answers with process.memoryUsage() and
 * process.getActiveResourcesInfo(). /metrics then reports the same process after that GC.
 *
 *   node --expose-gc dist/test/soak/server.js
 *
 * ORCHEO_TEST_INTERVALS (JSON, AppIntervals) shortens the service's timers for tests. The ports
 * bound (port 0 is fine) are announced on stdout as the "orcheo-authz serving" line even when
 * LOG_LEVEL hides info, so the spawning test learns them without picking ports beforehand.
 */
import { Socket } from 'node:net';
import { startApp, type App, type AppIntervals } from '../../src/app';
import { adminRoutes } from '../../src/admin/routes';
import { sendJson, type Route } from '../../src/admin/http-server';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';

export interface DebugStats {
  readonly gc: boolean;
  readonly memory: NodeJS.MemoryUsage;
  readonly resources: Record<string, number>;
  readonly handles: number;
  /** Each open TCP socket as `local port <- peer address:port` (`local port -> …` for one it opened), to name a leaked one. */
  readonly sockets: string[];
}

function stats(): DebugStats {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    // Twice: the first pass runs finalizers whose garbage the second one collects.
    gc();
    gc();
  }
  const resources: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) resources[r] = (resources[r] ?? 0) + 1;
  const active = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const sockets = active
    .filter((h): h is Socket => h instanceof Socket && h.remotePort !== undefined)
    .map((h) => `${h.localPort} ${(h as Socket & { server?: unknown }).server ? '<-' : '->'} ${h.remoteAddress}:${h.remotePort}`);
  return { gc: Boolean(gc), memory: process.memoryUsage(), resources, handles: active.length, sockets };
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  const logger = createLogger(cfg.log.level);
  const debug: Route = { method: 'GET', path: '/debug/stats', handler: (_req, res) => sendJson(res, 200, stats()) };
  const intervals = process.env.ORCHEO_TEST_INTERVALS ? (JSON.parse(process.env.ORCHEO_TEST_INTERVALS) as AppIntervals) : undefined;
  const app: App = await startApp(cfg, { logger, routes: (a) => [...adminRoutes(a), debug], intervals });
  if (!logger.isLevelEnabled('info')) {
    process.stdout.write(`${JSON.stringify({ msg: 'orcheo-authz serving', grpc: `${cfg.grpc.host}:${app.grpcPort}`, http: `${cfg.http.host}:${app.httpPort}` })}\n`);
  }
  const stop = (): void => {
    app.stop(2000).then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`server failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exit(1);
  });
}
