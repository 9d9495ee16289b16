import type { Metrics } from './metrics';
import { sendJson, type Route } from './http-server';

export interface Readiness {
  /** The token index has loaded once. */
  readonly store: boolean;
  /** The index synced recently enough to trust "not found" (absent: assumed fresh). */
  readonly storeFresh?: boolean | undefined;
  /** Milliseconds since the last successful sync (absent: unknown). */
  readonly storeSyncAgeMs?: number | undefined;
  readonly jwks: boolean;
  readonly draining: boolean;
}

/**
 * The `/readyz` body. A stale store keeps the status at 200 (known tokens keep working from the
 * index; unknown ones get 503) but says so, with the seconds since the last sync, so an operator
 * sees the outage that probes alone would hide. `checks` keeps the raw booleans.
 */
export function readinessBody(r: Readiness): { status: number; body: Record<string, unknown> } {
  const ready = r.store && r.jwks && !r.draining;
  const stale = r.store && r.storeFresh === false;
  const age = r.storeSyncAgeMs;
  const body: Record<string, unknown> = {
    status: ready ? 'ready' : 'not_ready',
    store: !r.store ? 'not_loaded' : stale ? 'stale' : 'ok',
    ...(stale && age !== undefined && Number.isFinite(age) ? { store_stale_seconds: Math.floor(age / 1000) } : {}),
    checks: { store: r.store, jwks: r.jwks, draining: r.draining },
  };
  return { status: ready ? 200 : 503, body };
}

/** `/healthz` (the process is alive), `/readyz` (it can decide: store loaded, JWKS primed), `/metrics`. */
export function opsRoutes(deps: { metrics: Metrics; readiness: () => Readiness }): Route[] {
  return [
    { method: 'GET', path: '/healthz', handler: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      handler: (_req, res) => {
        const { status, body } = readinessBody(deps.readiness());
        sendJson(res, status, body);
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async (_req, res) => {
        const body = await deps.metrics.exposition();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(body);
      },
    },
  ];
}
