import { startApp, type App } from '../app';
import { loadConfig } from '../config/load';
import { CodedError } from '../errors/api';
import { createLogger } from '../log';
import { configWarnings } from '../config/warnings';
import { adminRoutes } from '../admin/routes';

/**
 * `orcheo-authz serve`: runs until SIGTERM/SIGINT, then drains; resolves once stopped. It never
 * exits the process itself: a start or shutdown failure is thrown, and runCli maps it to its exit
 * code (config 2, store unreachable 3, other 1).
 */
export async function serve(): Promise<void> {
  const cfg = loadConfig();
  const logger = createLogger(cfg.log.level);
  // Same warnings as check-config, so a mistake is visible in the logs of a running service too.
  for (const warning of configWarnings(cfg, process.env)) logger.warn({ code: 'config.warning' }, warning);
  let app: App;
  try {
    app = await startApp(cfg, { logger, routes: adminRoutes });
  } catch (err) {
    logger.fatal({ err: (err as Error).message, code: (err as { code?: unknown }).code }, 'failed to start');
    logger.flush();
    throw err;
  }
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // A second signal while draining is ignored: the drain is bounded by its grace period.
  const ignore = (): void => undefined;
  process.on('SIGTERM', ignore).on('SIGINT', ignore);
  logger.info({ signal }, 'shutting down: draining in-flight checks');
  try {
    await app.stop();
  } catch (err) {
    logger.error({ err: (err as Error).message }, 'unclean shutdown');
    logger.flush();
    throw new CodedError('internal', `unclean shutdown: ${(err as Error).message}`, { cause: err });
  }
  logger.info('stopped');
  logger.flush();
}
