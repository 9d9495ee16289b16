import { startApp, type App } from '../app';
import { loadConfig } from '../config/load';
import { createLogger } from '../log';
import { configWarnings } from '../config/warnings';
import { adminRoutes } from '../admin/routes';

/** `orcheo-authz serve`: runs until SIGTERM/SIGINT, then drains and exits 0. */
export async function serve(): Promise<void> {
  const cfg = loadConfig();
  const logger = createLogger(cfg.log.level);
  // Same warnings as check-config, so a mistake is visible in the logs of a running service too.
  for (const warning of configWarnings(cfg, process.env)) logger.warn({ code: 'config.warning' }, warning);
  let app: App;
  try {
    app = await startApp(cfg, { logger, routes: adminRoutes });
  } catch (err) {
    logger.fatal({ err: (err as Error).message }, 'failed to start');
    logger.flush();
    throw err;
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: draining in-flight checks');
    app.stop().then(
      () => {
        logger.info('stopped');
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err: (err as Error).message }, 'unclean shutdown');
        logger.flush();
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}
