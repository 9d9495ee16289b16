import type { Logger } from 'pino';
import type { CheckPipeline } from './pipeline/check';
import type { CheckFn, DecideFn, Decision, RequestParts } from './pipeline/decision';
import { tracingEnabled, withTracing } from './pipeline/tracing';

export interface FrontDoorCheck {
  /** For the gRPC server: synchronous whenever the pipeline is (no decorator needs a promise). */
  readonly decide: DecideFn;
  /** For every other front door (HTTP authorization interface, tests): the same Check as a promise. */
  readonly check: CheckFn;
}

export interface FrontDoorDeps {
  /** The assertion decorator, when ORCHEO_AUTH_ASSERTION is on. */
  readonly wrap?: ((check: CheckFn) => CheckFn) | undefined;
  /** Seconds per Check, observed after each decision (the check-duration histogram). */
  readonly observeSeconds: (s: number) => void;
  readonly logger: Logger;
}

/**
 * What the front doors call: the pipeline, decorated (assertions, tracing), timed. Without a
 * decorator the Check stays synchronous end to end, so the gRPC handler answers in the same tick
 * without a promise per layer (each one cost allocations the garbage collector paid for under load).
 */
export function frontDoorCheck(pipeline: CheckPipeline, deps: FrontDoorDeps): FrontDoorCheck {
  const asserted: CheckFn = deps.wrap ? deps.wrap(pipeline) : pipeline;
  const traced = tracingEnabled() ? withTracing(asserted) : asserted;
  if (traced !== asserted) deps.logger.info('OpenTelemetry tracer provider found: tracing Check');
  const inner: DecideFn = traced === pipeline ? pipeline.decide : traced;
  // performance.now() allocates no BigInt.
  const decide: DecideFn = (req: RequestParts) => {
    const started = performance.now();
    const d = inner(req);
    if (!(d instanceof Promise)) {
      deps.observeSeconds((performance.now() - started) / 1e3);
      return d;
    }
    return d.then((x: Decision) => {
      deps.observeSeconds((performance.now() - started) / 1e3);
      return x;
    });
  };
  return { decide, check: (req) => Promise.resolve(decide(req)) };
}
