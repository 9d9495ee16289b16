import { explainRoutes, type ExplainDeps } from './explain-api';
import type { Route } from './http-server';
import { ADMIN_PREFIX, createTokensApi, type TokensApiDeps } from './tokens-api';

/** Everything the admin routes get from the app (widen here when a route needs more). */
export type AdminDeps = TokensApiDeps & ExplainDeps;

/**
 * The admin API under /api/admin/service-tokens:
 *   GET    /api/admin/service-tokens                 list (?status=Active,Expired,Revoked,Rotated &scope= &workspace=)
 *   POST   /api/admin/service-tokens                 create {id?, scopes?, workspaces?, expires_in?}
 *   GET    /api/admin/service-tokens/audit           audit trail (?id= &event= &limit= &before=)
 *   GET    /api/admin/service-tokens/{id}            show
 *   POST   /api/admin/service-tokens/{id}/rotate     rotate {overlap?=300, expires_in?, scopes?, workspaces?}
 *   DELETE /api/admin/service-tokens/{id}            revoke {reason?} (or ?reason=)
 * plus POST /api/admin/explain (explain-api.ts).
 * One handler per method on the prefix: it authenticates first, then routes (404/405 inside).
 */
export function adminRoutes(deps: AdminDeps): Route[] {
  const handler = createTokensApi(deps);
  const tokenRoutes = ['GET', 'POST', 'DELETE', 'PUT', 'PATCH'].flatMap((method) => [
    { method, path: ADMIN_PREFIX, handler },
    { method, path: `${ADMIN_PREFIX}/*`, handler },
  ]);
  return [...explainRoutes(deps), ...tokenRoutes];
}
