import type { Metrics } from './metrics';
import { sendJson, type Route } from './http-server';

export interface Readiness {
  readonly store: boolean;
  readonly jwks: boolean;
  readonly draining: boolean;
}

/** `/healthz` (the process is alive), `/readyz` (it can decide: store loaded, JWKS primed), `/metrics`. */
export function opsRoutes(deps: { metrics: Metrics; readiness: () => Readiness }): Route[] {
  return [
    { method: 'GET', path: '/healthz', handler: (_req, res) => sendJson(res, 200, { status: 'ok' }) },
    {
      method: 'GET',
      path: '/readyz',
      handler: (_req, res) => {
        const r = deps.readiness();
        const ready = r.store && r.jwks && !r.draining;
        sendJson(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks: r });
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      handler: async (_req, res) => {
        const body = await deps.metrics.registry.metrics();
        res.writeHead(200, { 'content-type': deps.metrics.registry.contentType });
        res.end(body);
      },
    },
  ];
}
