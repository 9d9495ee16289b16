import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Outcome } from '../pipeline/check';

/**
 * Prometheus metrics (prom-client: the standard Node client; exposition format, default process
 * metrics). Labels are bounded: a decision, a deny code from the closed union, a backend name. No
 * label ever carries a token, a subject or a path.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly checks = new Counter({ name: 'orcheo_authz_checks_total', help: 'Check decisions', labelNames: ['decision', 'code'] as const, registers: [this.registry] });
  readonly checkDuration = new Histogram({
    name: 'orcheo_authz_check_duration_seconds',
    help: 'Check latency inside the service',
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5],
    registers: [this.registry],
  });
  readonly tokenIndexSize = new Gauge({ name: 'orcheo_authz_token_index_size', help: 'Service tokens held in memory', registers: [this.registry] });
  readonly backendErrors = new Counter({ name: 'orcheo_authz_backend_errors_total', help: 'Errors talking to a backend', labelNames: ['backend'] as const, registers: [this.registry] });
  readonly limiterBackend = new Gauge({ name: 'orcheo_authz_ratelimit_backend', help: 'Active rate-limit backend (1 = active)', labelNames: ['backend'] as const, registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'orcheo_authz_' });
  }

  observe(o: Outcome, seconds: number): void {
    this.checks.inc({ decision: o.decision, code: o.code ?? 'ok' });
    this.checkDuration.observe(seconds);
  }
}
