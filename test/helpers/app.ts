import * as grpc from '@grpc/grpc-js';
import { startApp, type App, type AppIntervals } from '../../src/app';
import { adminRoutes } from '../../src/admin/routes';
import { loadConfig } from '../../src/config/load';
import { createLogger } from '../../src/log';
import { createTestSchema, pgReachable, type TestSchema } from './pg';
import { AuthzClient } from './grpc-client';
import { embeddedStore } from './pglite-template';

export interface TestApp {
  readonly app: App;
  readonly client: AuthzClient;
  readonly schema?: TestSchema | undefined;
  readonly logs: string[];
  stop(): Promise<void>;
}

/**
 * Starts the real service in-process on loopback ports chosen by the OS, with its own Postgres
 * schema (store 'pg') or a fresh embedded store ('embedded', a copy of an initialised data directory). Logs are captured, so tests can
 * assert that no secret reaches them.
 */
export interface TestAppOptions {
  /** Client credentials for a TLS/mTLS gRPC listener. */
  readonly tlsClient?: { ca: Buffer; cert?: Buffer; key?: Buffer };
  /** Merged over TEST_INTERVALS (a test about a production default passes that default here). */
  readonly intervals?: AppIntervals;
}

/**
 * Short timer periods, so tests observe a staleness bound, a flush or a backoff in a fraction of a
 * second instead of waiting for the production values. The staleness bound keeps a 10x margin over
 * the poll: a loaded CI machine must not turn "unknown token" into a spurious 503. The unknown-kid
 * cooldown and the max-age floor stay at their defaults: JWKS tests assert them with injected clocks.
 */
export const TEST_INTERVALS: AppIntervals = {
  indexPollMs: 200,
  staleAfterMs: 2000,
  flushMs: 250,
  feedRetryMinMs: 50,
  feedRetryMaxMs: 500,
  jwksBackoffMs: 1000,
  loadWatchMs: 20,
};

export async function startTestApp(env: Record<string, string> = {}, store: 'pg' | 'embedded' | 'auto' = 'pg', existing?: TestSchema, opts: TestAppOptions = {}): Promise<TestApp> {
  // 'auto': real Postgres when reachable, else the embedded store (for tests about the pipeline,
  // not the store, so they run everywhere).
  const usePg = store === 'pg' || (store === 'auto' && (await pgReachable()));
  const schema = usePg ? existing ?? (await createTestSchema()) : undefined;
  // The embedded store: a copy of an initialised data directory, not memory:// (which runs initdb).
  const dataDir = schema ? undefined : await embeddedStore();
  const cfg = loadConfig({
    ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0',
    ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0',
    ...(schema ? { ORCHEO_AUTH_DATABASE_URL: schema.url } : { ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: dataDir!.dir }),
    LOG_LEVEL: 'debug',
    ...env,
  });
  const logs: string[] = [];
  const logger = createLogger(cfg.log.level, { write: (s: string) => void logs.push(s) });
  const app = await startApp(cfg, { logger, routes: adminRoutes, intervals: { ...TEST_INTERVALS, ...opts.intervals } });
  const tc = opts.tlsClient;
  const client = new AuthzClient(app.grpcPort, undefined, tc ? grpc.credentials.createSsl(tc.ca, tc.key ?? null, tc.cert ?? null) : undefined);
  return {
    app,
    client,
    schema,
    logs,
    async stop() {
      client.close();
      await app.stop(1000);
      if (schema && !existing) await schema.drop();
      dataDir?.remove();
    },
  };
}
