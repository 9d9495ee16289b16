/**
 * `serve` for leak tests: the real service (startApp with the admin routes, configured from the
 * environment exactly like `orcheo-authz serve`) plus one test-only route, GET /debug/stats, which
 * runs a full GC (when started with `node --expose-gc`) and answers with process.memoryUsage() and
 * process.getActiveResourcesInfo(). /metrics then reports the same process after that GC.
 *
 *   node --expose-gc dist/test/soak/server.js
 */
import { startApp, type App } from '../../src/app';
import { adminRoutes } from '../../src/admin/routes';
import { sendJson, type Route } from '../../src/admin/http-server';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';

export interface DebugStats {
  readonly gc: boolean;
  readonly memory: NodeJS.MemoryUsage;
  readonly resources: Record<string, number>;
  readonly handles: number;
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
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
  return { gc: Boolean(gc), memory: process.memoryUsage(), resources, handles };
}

async function main(): Promise<void> {
  const cfg = loadConfig();
  const logger = createLogger(cfg.log.level);
  const debug: Route = { method: 'GET', path: '/debug/stats', handler: (_req, res) => sendJson(res, 200, stats()) };
  const app: App = await startApp(cfg, { logger, routes: (a) => [...adminRoutes(a), debug] });
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
