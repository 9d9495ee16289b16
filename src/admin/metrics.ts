import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';
import type { Outcome } from '../pipeline/decision';
import { packageVersion } from '../version';

/** Values read at scrape time from the components that own them (no work on the Check path). */
export interface MetricSources {
  readonly tokenIndex: () => { size: number; staleMs: number; syncFailures: number };
  readonly jwt?: (() => { cacheHits: number; cacheMisses: number; cacheSize: number; jwksFetches: number; jwksFetchFailures: number; jwksKeySetAgeSeconds?: number | undefined }) | undefined;
  readonly notifications?: (() => number) | undefined;
  /** Write-to-index delay of the last token notification, ms (database and host clocks assumed close). */
  readonly notificationLagMs?: (() => number | undefined) | undefined;
  /** The policy in force: failed reloads, load count, and when it was loaded (ms since the epoch). */
  readonly policy?: (() => { reloadFailures: number; revision: number; loadedAtMs: number }) | undefined;
  readonly version?: string | undefined;
}

/** A counter whose value is owned elsewhere and copied in at scrape time. */
function mirroredCounter(registry: Registry, name: string, help: string, read: () => number | undefined): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const v = read();
      this.reset();
      if (v !== undefined && v > 0) this.inc(v);
    },
  });
}

/**
 * A labelled counter incremented on the Check path: plain numbers in nested Maps (no allocation per
 * call), copied into prom-client at scrape time. prom-client's own `inc({labels})` hashes and
 * validates the labels and allocates a result object on every call. The label values are bounded by
 * the callers (a decision, a code of the closed deny union, true/false).
 */
export class TalliedCounter {
  private readonly counts = new Map<string, Map<string, number>>();

  constructor(registry: Registry, name: string, help: string, labelNames: readonly [string] | readonly [string, string]) {
    const counts = this.counts;
    new Counter({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      collect() {
        this.reset();
        for (const [a, inner] of counts) for (const [b, n] of inner) this.inc(labelNames.length === 1 ? { [labelNames[0]]: a } : { [labelNames[0]]: a, [labelNames[1]!]: b }, n);
      },
    });
  }

  inc(a: string, b = ''): void {
    let inner = this.counts.get(a);
    if (!inner) this.counts.set(a, (inner = new Map()));
    inner.set(b, (inner.get(b) ?? 0) + 1);
  }

  /** Sum over every label combination. */
  total(): number {
    let n = 0;
    for (const inner of this.counts.values()) for (const v of inner.values()) n += v;
    return n;
  }
}

/** One exposition line of a histogram, as prom-client's registry formats it. */
interface HistogramValue {
  readonly metricName: string;
  readonly labels: Readonly<Record<string, string | number>>;
  readonly value: number;
}

/**
 * An unlabelled histogram observed on the Check path: bucket counts in a Float64Array, handed to
 * prom-client's registry at scrape time in the shape its own Histogram exposes. prom-client's
 * `observe()` allocates a closure and a label object and hashes the labels on every call (~1.7 µs
 * per Check in the service's profile, README "Benchmark").
 */
export class TalliedHistogram {
  readonly name: string;
  readonly help: string;
  private readonly bounds: readonly number[];
  /** counts[i]: observations in (bounds[i-1], bounds[i]]; the last slot is above every bound. */
  private readonly counts: Float64Array;
  private sum = 0;
  private n = 0;

  constructor(registry: Registry, name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.bounds = [...bounds].sort((a, b) => a - b);
    this.counts = new Float64Array(this.bounds.length + 1);
    registry.registerMetric(this as unknown as Metric);
  }

  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++; // le: a value on a bound belongs to that bucket
    this.counts[i]!++;
    this.sum += v;
    this.n++;
  }

  /** What the registry formats (prom-client's typings say an enum where its formatter writes the string). */
  get(): { name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: HistogramValue[] } {
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    const values: HistogramValue[] = this.bounds.map((le, i) => ({ metricName: bucket, labels: { le }, value: (acc += this.counts[i]!) }));
    values.push({ metricName: bucket, labels: { le: '+Inf' }, value: this.n }, { metricName: `${this.name}_sum`, labels: {}, value: this.sum }, { metricName: `${this.name}_count`, labels: {}, value: this.n });
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  reset(): void {
    this.counts.fill(0);
    this.sum = 0;
    this.n = 0;
  }
}

/**
 * Process metrics (CPU, memory, event-loop lag, GC) describe the process, not one app, so they are
 * collected once per process into a registry of their own. collectDefaultMetrics starts an
 * event-loop-delay monitor and a GC observer that nothing can stop: once per app, a process that
 * starts many apps (the test suite) would keep every one of them running.
 */
let processRegistry: Registry | undefined;
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'orcheo_authz_' });
  }
  return processRegistry;
}

/**
 * Prometheus metrics (prom-client: the standard Node client; exposition format, default process
 * metrics). Labels are bounded: a decision, a deny code from the closed union, a backend name. No
 * label ever carries a token, a subject or a path.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly checks = new TalliedCounter(this.registry, 'orcheo_authz_checks_total', 'Check decisions', ['decision', 'code']);
  readonly checkDuration = new TalliedHistogram(this.registry, 'orcheo_authz_check_duration_seconds', 'Check latency inside the service', [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5]);
  readonly limiterBackend = new Gauge({ name: 'orcheo_authz_ratelimit_backend', help: 'Active rate-limit backend (1 = active): redis, memory, or fallback while Redis is unreachable', labelNames: ['backend'] as const, registers: [this.registry] });

  /** Incremented at the bootstrap authenticator's use callback: it should stay at 0 after setup. */
  readonly bootstrapUses = new TalliedCounter(this.registry, 'orcheo_authz_bootstrap_token_uses_total', 'Requests that presented the bootstrap token', ['accepted']);

  readonly shadowDenials = new TalliedCounter(this.registry, 'orcheo_authz_shadow_denials_total', 'Would-be denials allowed by shadow mode (enforce: false, ORCHEO_AUTH_DRY_RUN)', ['code']);

  constructor() {
    processMetrics();
    // All three series exist from the start (at 0) so alerts and dashboards see them before any change.
    this.setLimiterBackend(undefined);
  }

  /** The exposition served at /metrics: this app's series and the process's. */
  exposition(): Promise<string> {
    return Registry.merge([this.registry, processMetrics()]).metrics();
  }

  setLimiterBackend(b: 'redis' | 'memory' | 'fallback' | undefined): void {
    for (const n of ['redis', 'memory', 'fallback']) this.limiterBackend.set({ backend: n }, n === b ? 1 : 0);
  }

  bind(src: MetricSources): void {
    const r = this.registry;
    new Gauge({ name: 'orcheo_authz_build_info', help: 'Always 1; the version label says what runs', labelNames: ['version'] as const, registers: [r] }).set({ version: src.version ?? packageVersion() }, 1);
    if (src.policy) {
      const p = src.policy;
      mirroredCounter(r, 'orcheo_authz_policy_reload_failures_total', 'Policy file reloads rejected (previous policy kept)', () => p().reloadFailures);
      new Gauge({ name: 'orcheo_authz_policy_revision', help: 'Policy loads since start (1 = the initial load)', registers: [r], collect() { this.set(p().revision); } });
      new Gauge({ name: 'orcheo_authz_policy_loaded_timestamp_seconds', help: 'When the policy in force was loaded', registers: [r], collect() { this.set(p().loadedAtMs / 1000); } });
    }
    new Gauge({ name: 'orcheo_authz_token_index_size', help: 'Service tokens held in memory', registers: [r], collect() { this.set(src.tokenIndex().size); } });
    new Gauge({
      name: 'orcheo_authz_token_index_staleness_seconds',
      help: 'Seconds since the token index last synced with the store',
      registers: [r],
      collect() {
        const s = src.tokenIndex().staleMs;
        this.set(Number.isFinite(s) ? s / 1000 : -1);
      },
    });
    mirroredCounter(r, 'orcheo_authz_store_sync_failures_total', 'Failed token store syncs (Postgres errors)', () => src.tokenIndex().syncFailures);
    mirroredCounter(r, 'orcheo_authz_token_notifications_total', 'Token change notifications received', () => src.notifications?.());
    new Gauge({
      name: 'orcheo_authz_token_notification_lag_seconds',
      help: 'Delay from a token write to this replica applying it, for the last notification (-1 before any)',
      registers: [r],
      collect() {
        const ms = src.notificationLagMs?.();
        this.set(ms === undefined ? -1 : ms / 1000);
      },
    });
    if (src.jwt) {
      const jwt = src.jwt;
      mirroredCounter(r, 'orcheo_authz_jwt_cache_hits_total', 'Verified-token cache hits', () => jwt().cacheHits);
      mirroredCounter(r, 'orcheo_authz_jwt_cache_misses_total', 'Verified-token cache misses', () => jwt().cacheMisses);
      new Gauge({ name: 'orcheo_authz_jwt_cache_size', help: 'Verified tokens cached', registers: [r], collect() { this.set(jwt().cacheSize); } });
      mirroredCounter(r, 'orcheo_authz_jwks_fetches_total', 'JWKS fetch attempts', () => jwt().jwksFetches);
      mirroredCounter(r, 'orcheo_authz_jwks_fetch_failures_total', 'Failed JWKS fetches', () => jwt().jwksFetchFailures);
      // -1 until a remote key set was fetched once (or with no remote source): "no set" must not read as "fresh".
      new Gauge({ name: 'orcheo_authz_jwks_key_set_age_seconds', help: 'Seconds since the remote key set in use was fetched (-1: none)', registers: [r], collect() { this.set(jwt().jwksKeySetAgeSeconds ?? -1); } });
    }
  }

  /** The pipeline's outcome hook: one count per decision. */
  count(o: Pick<Outcome, 'decision' | 'code' | 'shadowCode'>): void {
    this.checks.inc(o.decision, o.code ?? 'ok');
    if (o.shadowCode) this.shadowDenials.inc(o.shadowCode);
  }
}
