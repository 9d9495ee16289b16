import type { Logger } from 'pino';
import { bootstrapUseLog, createBootstrapAuthenticator, type BootstrapUseLog } from './authn/bootstrap';
import { createAuthenticatorChain } from './authn/chain';
import { createJwtAuthenticator, type JwtAuthenticator } from './authn/jwt';
import { createServiceTokenAuthenticator } from './authn/service-token';
import type { Authenticator } from './authn/types';
import { BUILTIN_POLICY } from './authz/builtin';
import { loadPolicyFile, PolicySource } from './authz/policy-file';
import { hasStaticCredentialSource } from './config/load';
import type { AuthMode, Config } from './config/types';
import { startGrpcServer, type GrpcServer } from './grpc/server';
import { grpcServerCredentials } from './grpc/tls';
import { startHttpServer, type Route } from './admin/http-server';
import { Metrics } from './admin/metrics';
import { opsRoutes } from './admin/ops-routes';
import { createCheckPipeline } from './pipeline/check';
import type { CheckFn } from './pipeline/decision';
import { withKeyNamespace } from './pipeline/identity-key';
import { describeLimits, describeMode, resolveMode } from './pipeline/mode';
import { tracingEnabled, withTracing } from './pipeline/tracing';
import { createRateLimiter } from './ratelimit';
import { httpClientIp } from './ratelimit/client-ip';
import type { RateLimiter } from './ratelimit/types';
import type { Db } from './store/db';
import { migrate } from './store/migrations';
import { describeStore, openDb } from './store/open';
import { TokenIndex } from './store/token-index';
import { UsageRecorder } from './store/usage';
import { AuditRecorder } from './store/audit';
import { TokenChangeFeed } from './store/notify';

/** How often start checks whether the background sync has loaded the index (health flips then). */
const LOAD_WATCH_MS = 100;

export interface App {
  readonly grpcPort: number;
  readonly httpPort: number;
  readonly db: Db;
  readonly index: TokenIndex;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly check: CheckFn;
  /** Batched audit counters (auth failures, token use, bootstrap use). */
  readonly audit: AuditRecorder;
  /** LISTEN/NOTIFY feed that keeps `index` in step with writes on every replica. */
  readonly tokenFeed: TokenChangeFeed;
  /** The global mode in force right now (an unset mode enforces once a credential source exists). */
  mode(): AuthMode;
  /** Health NOT_SERVING, in-flight checks finish, buffers flushed, connections closed. */
  stop(graceMs?: number): Promise<void>;
}

export interface AppOptions {
  readonly logger: Logger;
  /** An already open store (tests wrap one to count queries); opened from the config otherwise. */
  readonly db?: Db | undefined;
  /** Extra HTTP routes (the admin API registers here). */
  readonly routes?: (app: App) => readonly Route[];
  /** How often the bootstrap token's uses are logged as one line with counts (default 60 s). */
  readonly bootstrapLogIntervalMs?: number;
}

export async function startApp(cfg: Config, opts: AppOptions): Promise<App> {
  const { logger } = opts;
  const metrics = new Metrics();
  const policy = new PolicySource(cfg.policyFile ? loadPolicyFile(cfg.policyFile) : BUILTIN_POLICY, cfg.policyFile, logger);
  policy.watch();

  const db = opts.db ?? (await openDb(cfg, logger));
  if (cfg.autoMigrate) {
    try {
      await migrate(db);
    } catch (err) {
      if (!opts.db) await db.close().catch(() => undefined);
      throw new Error(`cannot reach or migrate the token store, ${describeStore(cfg)}: ${(err as Error).message}`);
    }
  }
  const index = new TokenIndex(db, logger);
  try {
    await index.resync();
  } catch (err) {
    // Start anyway: cached-nothing means unknown tokens get 503 until the store answers.
    logger.error({ err: (err as Error).message, store: describeStore(cfg) }, 'token store unreachable at start; retrying in the background');
  }
  index.start();
  const usage = new UsageRecorder(db, logger);
  usage.start();
  const audit = new AuditRecorder(db, logger);
  audit.start();
  const tokenFeed = new TokenChangeFeed(db, index, logger);
  await tokenFeed.start();

  const kinds: Authenticator[] = [];
  let bootstrapLog: BootstrapUseLog | undefined;
  if (cfg.bootstrap) {
    const uses = (bootstrapLog = bootstrapUseLog(logger, opts.bootstrapLogIntervalMs ?? 60_000));
    logger.warn('a bootstrap service token is configured: create persistent tokens, then remove ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN');
    audit.count('bootstrap.configured', 'bootstrap');
    kinds.push(withKeyNamespace('bootstrap',
      createBootstrapAuthenticator(cfg.bootstrap, (ok) => {
        uses.onUse(ok);
        metrics.bootstrapUses.inc({ accepted: String(ok) });
        audit.count(ok ? 'bootstrap.used' : 'bootstrap.rejected', 'bootstrap');
      }),
    ));
  }
  kinds.push(withKeyNamespace('service_token', createServiceTokenAuthenticator(index)));
  const jwt: JwtAuthenticator | undefined = createJwtAuthenticator({ ...cfg.jwt, secret: cfg.jwt.secret }, { logger });
  if (jwt) kinds.push(withKeyNamespace('jwt', jwt));

  const limitsOn = cfg.rateLimit.ip > 0 || cfg.rateLimit.identity > 0;
  const limiter: RateLimiter | undefined = limitsOn
    ? createRateLimiter({
        redisUrl: cfg.redisUrl,
        keyPrefix: cfg.rateLimit.keyPrefix,
        intervalSeconds: cfg.rateLimit.intervalSeconds,
        failClosed: cfg.rateLimit.failClosed,
        logger,
        onBackendChange: (b) => metrics.setLimiterBackend(b),
      })
    : undefined;

  const staticSources = hasStaticCredentialSource(cfg);
  const mode = (): AuthMode => resolveMode(cfg.mode, { staticSources, loaded: index.isLoaded, tokens: index.size });
  const check = createCheckPipeline({
    mode,
    authenticator: createAuthenticatorChain(kinds),
    policy: () => policy.policy,
    limiter,
    limits: { ip: cfg.rateLimit.ip, identity: cfg.rateLimit.identity, xffTrustedHops: cfg.rateLimit.xffTrustedHops },
    logger,
    sensitiveDebug: cfg.log.sensitiveDebug,
    observe: (o) => {
      metrics.count(o);
      audit.observe(o);
      // `use_count` counts allowed requests only, like the audit trail's token.used.
      if (o.decision === 'allow' && o.identity?.source === 'service_token') usage.record(o.identity.tokenId, Date.now());
    },
  });
  const traced = tracingEnabled() ? withTracing(check) : check;
  if (traced !== check) logger.info('OpenTelemetry tracer provider found: tracing Check');
  // A `then`, not an async wrapper (one promise fewer per Check); performance.now() allocates no BigInt.
  const timedCheck: CheckFn = (req) => {
    const started = performance.now();
    return traced(req).then((d) => {
      metrics.checkDuration.observe((performance.now() - started) / 1e3);
      return d;
    });
  };
  metrics.bind({
    tokenIndex: () => ({ size: index.size, staleMs: index.staleMs, syncFailures: index.syncFailures }),
    jwt: jwt ? () => jwt.stats() : undefined,
    notifications: () => tokenFeed.received,
    notificationLagMs: () => tokenFeed.lastLagMs,
    policy: () => policy,
  });
  // Export the limiter backend from the start (the Redis one reports 'redis' once connected).
  if (limiter && !cfg.redisUrl?.trim()) metrics.setLimiterBackend('memory');

  let grpcServer: GrpcServer | undefined;
  let draining = false;
  let loadWatch: NodeJS.Timeout | undefined;
  const app: App = {
    get grpcPort() {
      return grpcServer?.port ?? 0;
    },
    httpPort: 0,
    db,
    index,
    metrics,
    logger,
    check: timedCheck,
    audit,
    tokenFeed,
    mode,
    async stop(graceMs = 5000) {
      if (draining) return;
      draining = true;
      if (loadWatch) clearInterval(loadWatch);
      await grpcServer?.shutdown(graceMs);
      await http.close();
      policy.close();
      index.stop();
      tokenFeed.stop();
      jwt?.close();
      bootstrapLog?.stop();
      await usage.stop();
      await audit.stop();
      await limiter?.close();
      await db.close();
    },
  };

  grpcServer = await startGrpcServer({ host: cfg.grpc.host, port: cfg.grpc.port, credentials: await grpcServerCredentials(cfg.grpc.tls), check: timedCheck, logger });
  let routes: Route[] | undefined;
  const readiness = () => ({ store: index.isLoaded, storeFresh: index.fresh, storeSyncAgeMs: index.staleMs, jwks: jwt ? jwt.primed() : true, draining });
  const http = await startHttpServer({
    host: cfg.http.host,
    port: cfg.http.port,
    tls: cfg.http.tls,
    clientIp: httpClientIp(cfg.trustedProxies, cfg.rateLimit.xffTrustedHops),
    routes: () => (routes ??= [...opsRoutes({ metrics, readiness }), ...(opts.routes?.(app) ?? [])]),
    logger,
  });
  (app as { httpPort: number }).httpPort = http.port;
  if (jwt) void jwt.ready();
  // Health says SERVING only once the index has loaded: before that "unknown token" means nothing,
  // and an unset mode enforces. A later store outage keeps it SERVING (cached tokens still decide).
  const markServing = () => {
    if (!draining) grpcServer?.setServing(true);
  };
  if (index.isLoaded) markServing();
  else {
    loadWatch = setInterval(() => {
      if (!index.isLoaded) return;
      clearInterval(loadWatch);
      loadWatch = undefined;
      markServing();
      logger.info({ mode: mode(), tokens: index.size }, 'token index loaded; serving');
    }, LOAD_WATCH_MS);
    loadWatch.unref();
  }
  const why = describeMode(cfg.mode, { staticSources, loaded: index.isLoaded, tokens: index.size });
  const limitsLine = describeLimits(cfg.rateLimit);
  // `msg` stays exactly "orcheo-authz serving" (spawn helpers and the soak runner read it); the
  // operator's one-line summary is `summary`.
  const summary = `grpc ${cfg.grpc.host}:${grpcServer.port}, http ${cfg.http.host}:${http.port}${index.isLoaded ? '' : ' (health NOT_SERVING until the token store loads)'}; mode ${mode()}: ${why}; ${limitsLine}`;
  logger.info(
    { grpc: `${cfg.grpc.host}:${grpcServer.port}`, http: `${cfg.http.host}:${http.port}`, mode: mode(), mode_reason: why, rate_limits: limitsLine, store: db.kind, policy: policy.policy.origin, tokens: index.size, serving: index.isLoaded, summary },
    'orcheo-authz serving',
  );
  return app;
}
