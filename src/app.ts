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
import { CodedError } from './errors/api';
import { startGrpcServer, type GrpcServer } from './grpc/server';
import { grpcServerCredentials } from './grpc/tls';
import { startHttpServer, type Route } from './admin/http-server';
import { startHttpAuthzServer, type HttpAuthzServer } from './httpauthz/server';
import { Metrics } from './admin/metrics';
import { opsRoutes } from './admin/ops-routes';
import type { AdminDeps } from './admin/routes';
import { outcomeObserver } from './observe';
import { frontDoorCheck } from './check-front';
import { createCheckPipeline, type PipelineDeps } from './pipeline/check';
import type { CheckFn, RequestParts } from './pipeline/decision';
import type { Explanation } from './pipeline/explain';
import { withKeyNamespace } from './pipeline/identity-key';
import { describeLimits, describeMode, resolveMode } from './pipeline/mode';
import { createRateLimiter } from './ratelimit';
import { httpClientIp } from './ratelimit/client-ip';
import type { RateLimiter } from './ratelimit/types';
import { StoreUnavailableError, type Db } from './store/db';
import { migrate } from './store/migrations';
import { describeStore, openDb } from './store/open';
import { TokenIndex } from './store/token-index';
import { UsageRecorder } from './store/usage';
import { AuditRecorder } from './store/audit';
import { TokenChangeFeed } from './store/notify';
import { createTokenService } from './tokens/service';
import { startAssertions, type Assertions } from './assertion';

/** How often start checks whether the background sync has loaded the index (health flips then). */
const LOAD_WATCH_MS = 100;

/**
 * Timer periods, each defaulting to its production value when unset. Tests shorten them instead of
 * waiting seconds of real time for a staleness bound, a flush or a backoff.
 */
export interface AppIntervals {
  /** Token index poll for changed rows (default 1000). */
  readonly indexPollMs?: number;
  /** Without a successful sync for this long, an unknown token is 503 (default 10000). */
  readonly staleAfterMs?: number;
  /** Usage and audit counter flush (default 5000). */
  readonly flushMs?: number;
  /** LISTEN re-subscription backoff, doubling from min to max (default 200..5000). */
  readonly feedRetryMinMs?: number;
  readonly feedRetryMaxMs?: number;
  /** JWKS: wait after a failed fetch (default 5000), unknown-kid refetch cooldown (30000), max-age floor (5000). */
  readonly jwksBackoffMs?: number;
  readonly jwksCooldownMs?: number;
  readonly jwksMinTtlMs?: number;
  /** How often start checks whether the index has loaded (default 100). */
  readonly loadWatchMs?: number;
  /** gRPC connection idle timeout, max age and its grace (grpc/server-options.ts CONNECTION_LIMITS: 300000, 3600000, 30000). */
  readonly grpcIdleMs?: number;
  readonly grpcMaxAgeMs?: number;
  readonly grpcAgeGraceMs?: number;
  /** Redis limiter command timeout before the in-process fallback (default 100; ratelimit/index.ts). */
  readonly redisCommandTimeoutMs?: number;
}

export interface App {
  readonly grpcPort: number;
  readonly httpPort: number;
  /** The HTTP authorization interface's port; 0 when `ORCHEO_AUTH_HTTP_AUTHZ_ADDR=off`. */
  readonly httpAuthzPort: number;
  readonly db: Db;
  readonly index: TokenIndex;
  readonly metrics: Metrics;
  readonly logger: Logger;
  readonly check: CheckFn;
  /** Batched audit counters (auth failures, token use, bootstrap use). */
  readonly audit: AuditRecorder;
  /** LISTEN/NOTIFY feed that keeps `index` in step with writes on every replica. */
  readonly tokenFeed: TokenChangeFeed;
  /** Identity assertions, when `ORCHEO_AUTH_ASSERTION=true`. */
  readonly assertions?: Assertions | undefined;
  /** How `check` would decide a request, counting nothing (admin explain). */
  readonly explain: (req: RequestParts) => Promise<Explanation>;
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
  readonly routes?: (deps: AdminDeps) => readonly Route[];
  readonly intervals?: AppIntervals;
  /** How often the bootstrap token's uses are logged as one line with counts (default 60 s). */
  readonly bootstrapLogIntervalMs?: number;
}

export async function startApp(cfg: Config, opts: AppOptions): Promise<App> {
  const { logger } = opts;
  const iv = opts.intervals ?? {};
  const metrics = new Metrics();
  const policy = new PolicySource(cfg.policyFile ? loadPolicyFile(cfg.policyFile) : BUILTIN_POLICY, cfg.policyFile, logger);
  policy.watch();

  const db = opts.db ?? (await openDb(cfg, logger));
  if (cfg.autoMigrate) {
    try {
      await migrate(db);
    } catch (err) {
      if (!opts.db) await db.close().catch(() => undefined);
      const msg = `cannot reach or migrate the token store, ${describeStore(cfg)}: ${(err as Error).message}`;
      throw err instanceof StoreUnavailableError ? new StoreUnavailableError(msg, { cause: err }) : new CodedError('store.migration_failed', msg, { cause: err });
    }
  }
  const index = new TokenIndex(db, logger, { pollIntervalMs: iv.indexPollMs, maxStalenessMs: iv.staleAfterMs });
  try {
    await index.resync();
  } catch (err) {
    // Start anyway: cached-nothing means unknown tokens get 503 until the store answers.
    logger.error({ err: (err as Error).message, store: describeStore(cfg) }, 'token store unreachable at start; retrying in the background');
  }
  index.start();
  const usage = new UsageRecorder(db, logger, iv.flushMs);
  usage.start();
  const audit = new AuditRecorder(db, logger, iv.flushMs);
  audit.start();
  const tokenFeed = new TokenChangeFeed(db, index, logger, { retryMinMs: iv.feedRetryMinMs, retryMaxMs: iv.feedRetryMaxMs });
  await tokenFeed.start();
  const assertions = cfg.assertion.enabled ? await startAssertions(cfg.assertion, { db, index, feed: tokenFeed, logger }) : undefined;

  const kinds: Authenticator[] = [];
  let bootstrapLog: BootstrapUseLog | undefined;
  if (cfg.bootstrap) {
    const uses = (bootstrapLog = bootstrapUseLog(logger, opts.bootstrapLogIntervalMs ?? 60_000));
    logger.warn('a bootstrap service token is configured: create persistent tokens, then remove ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN');
    audit.count('bootstrap.configured', 'bootstrap');
    kinds.push(withKeyNamespace('bootstrap',
      createBootstrapAuthenticator(cfg.bootstrap, (ok) => {
        uses.onUse(ok);
        metrics.bootstrapUses.inc(ok ? 'true' : 'false');
        audit.count(ok ? 'bootstrap.used' : 'bootstrap.rejected', 'bootstrap');
      }),
    ));
  }
  kinds.push(withKeyNamespace('service_token', createServiceTokenAuthenticator(index)));
  const jwt: JwtAuthenticator | undefined = createJwtAuthenticator({ ...cfg.jwt, secret: cfg.jwt.secret }, {
    logger,
    intervals: { backoffMs: iv.jwksBackoffMs, cooldownMs: iv.jwksCooldownMs, minTtlMs: iv.jwksMinTtlMs },
  });
  if (jwt) kinds.push(withKeyNamespace('jwt', jwt));

  const limitsOn = cfg.rateLimit.ip > 0 || cfg.rateLimit.identity > 0;
  const limiter: RateLimiter | undefined = limitsOn
    ? createRateLimiter({
        redisUrl: cfg.redisUrl,
        keyPrefix: cfg.rateLimit.keyPrefix,
        intervalSeconds: cfg.rateLimit.intervalSeconds,
        failClosed: cfg.rateLimit.failClosed,
        commandTimeoutMs: iv.redisCommandTimeoutMs,
        logger,
        onBackendChange: (b) => metrics.setLimiterBackend(b),
      })
    : undefined;

  const staticSources = hasStaticCredentialSource(cfg);
  const mode = (): AuthMode => resolveMode(cfg.mode, { staticSources, loaded: index.isLoaded, tokens: index.size });
  const pipeline: PipelineDeps = {
    mode,
    authenticator: createAuthenticatorChain(kinds),
    policy: () => policy.policy,
    limiter,
    limits: { ip: cfg.rateLimit.ip, identity: cfg.rateLimit.identity, xffTrustedHops: cfg.rateLimit.xffTrustedHops },
    logger,
    sensitiveDebug: cfg.log.sensitiveDebug,
    denyLogRate: cfg.log.denyRate,
    dryRun: cfg.dryRun,
    observe: outcomeObserver({ metrics, audit, usage }),
  };
  const check = createCheckPipeline(pipeline);
  // The admin API authenticates through the same pipeline, but its calls are not Envoy's checks.
  // It never signs an assertion (nobody upstream reads one) and is never in shadow mode.
  const adminCheck = createCheckPipeline({ ...pipeline, dryRun: false, observe: outcomeObserver({ audit, usage }) });
  const front = frontDoorCheck(check, { wrap: assertions && ((c) => assertions.wrap(c)), observeSeconds: (sec) => metrics.checkDuration.observe(sec), logger });
  metrics.bind({
    tokenIndex: () => ({ size: index.size, staleMs: index.staleMs, syncFailures: index.syncFailures }),
    jwt: jwt ? () => jwt.stats() : undefined,
    notifications: () => tokenFeed.received,
    notificationLagMs: () => tokenFeed.lastLagMs,
    policy: () => policy,
  });
  // Export the limiter backend from the start (the Redis one reports 'redis' once connected).
  if (limiter && !cfg.redisUrl?.trim()) metrics.setLimiterBackend('memory');

  let httpAuthz: HttpAuthzServer | undefined;
  let draining = false;
  let loadWatch: NodeJS.Timeout | undefined;
  const connection = { idleMs: iv.grpcIdleMs, maxAgeMs: iv.grpcMaxAgeMs, ageGraceMs: iv.grpcAgeGraceMs };
  const grpcServer: GrpcServer = await startGrpcServer({ host: cfg.grpc.host, port: cfg.grpc.port, credentials: await grpcServerCredentials(cfg.grpc.tls), check: front.decide, logger, connection });
  const readiness = () => ({ store: index.isLoaded, storeFresh: index.fresh, storeSyncAgeMs: index.staleMs, jwks: jwt ? jwt.primed() : true, draining });
  const tokens = createTokenService({ db, index, logger });
  const routes: readonly Route[] = [
    ...opsRoutes({ metrics, readiness }),
    ...(assertions?.routes ?? []),
    ...(opts.routes?.({ check: adminCheck, explain: check.explain, tokens, index, logger }) ?? []),
  ];
  const http = await startHttpServer({
    host: cfg.http.host,
    port: cfg.http.port,
    tls: cfg.http.tls,
    clientIp: httpClientIp(cfg.trustedProxies, cfg.rateLimit.xffTrustedHops),
    routes: () => routes,
    logger,
  });
  const app: App = {
    grpcPort: grpcServer.port,
    httpPort: http.port,
    get httpAuthzPort() {
      return httpAuthz?.port ?? 0;
    },
    db,
    index,
    metrics,
    logger,
    check: front.check,
    audit,
    tokenFeed,
    assertions,
    explain: check.explain,
    mode,
    async stop(graceMs = 5000) {
      if (draining) return;
      draining = true;
      if (loadWatch) clearInterval(loadWatch);
      await grpcServer.shutdown(graceMs);
      await http.close();
      await httpAuthz?.close();
      policy.close();
      index.stop();
      tokenFeed.stop();
      assertions?.stop();
      jwt?.close();
      bootstrapLog?.stop();
      check.flushLog();
      adminCheck.flushLog();
      await usage.stop();
      await audit.stop();
      await limiter?.close();
      await db.close();
    },
  };

  const authzAddr = cfg.httpAuthz.addr;
  if (authzAddr) {
    try {
      httpAuthz = await startHttpAuthzServer({ ...authzAddr, check: front.check, pathPrefix: cfg.httpAuthz.pathPrefix, clientIp: httpClientIp(cfg.trustedProxies, cfg.rateLimit.xffTrustedHops), logger });
    } catch (err) {
      await app.stop(0).catch(() => undefined);
      throw new Error(`cannot listen on ORCHEO_AUTH_HTTP_AUTHZ_ADDR ${authzAddr.host}:${authzAddr.port}: ${(err as Error).message}`);
    }
  }
  const authzLine = authzAddr ? `${authzAddr.host}:${httpAuthz!.port}` : 'off';
  if (jwt) void jwt.ready();
  // Health says SERVING only once the index has loaded: before that "unknown token" means nothing,
  // and an unset mode enforces. A later store outage keeps it SERVING (cached tokens still decide).
  const markServing = () => {
    if (!draining) grpcServer.setServing(true);
  };
  if (index.isLoaded) markServing();
  else {
    loadWatch = setInterval(() => {
      if (!index.isLoaded) return;
      clearInterval(loadWatch);
      loadWatch = undefined;
      markServing();
      logger.info({ mode: mode(), tokens: index.size }, 'token index loaded; serving');
    }, iv.loadWatchMs ?? LOAD_WATCH_MS);
    loadWatch.unref();
  }
  const why = describeMode(cfg.mode, { staticSources, loaded: index.isLoaded, tokens: index.size });
  const limitsLine = describeLimits(cfg.rateLimit);
  // `msg` stays exactly "orcheo-authz serving" (spawn helpers and the soak runner read it); the
  // operator's one-line summary is `summary`.
  const summary = `grpc ${cfg.grpc.host}:${grpcServer.port}, http ${cfg.http.host}:${http.port}${index.isLoaded ? '' : ' (health NOT_SERVING until the token store loads)'}, http authz ${authzLine}; mode ${mode()}: ${why}; ${limitsLine}`;
  logger.info(
    { grpc: `${cfg.grpc.host}:${grpcServer.port}`, http: `${cfg.http.host}:${http.port}`, http_authz: authzLine, mode: mode(), mode_reason: why, rate_limits: limitsLine, store: db.kind, policy: policy.policy.origin, tokens: index.size, serving: index.isLoaded, summary },
    'orcheo-authz serving',
  );
  return app;
}
