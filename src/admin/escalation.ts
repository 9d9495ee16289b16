import { ALL_WORKSPACES } from '../authz/scopes';
import type { AdminActor } from './auth';
import { ApiError } from './errors';

/**
 * Create and rotate grant at most what the caller holds: a workspace-scoped admin must not mint a
 * token with more scopes or wider workspaces than its own, or `admin:tokens:write` would be a
 * path to every scope on every workspace. `*` is grantable only by a caller holding `*`.
 */
export function assertGrantable(actor: AdminActor, scopes: readonly string[], workspaces: readonly string[]): void {
  const held = new Set(actor.scopes);
  const heldWs = new Set(actor.workspaces);
  const missingScopes = [...new Set(scopes)].filter((s) => !held.has(s)).sort();
  const missingWs = heldWs.has(ALL_WORKSPACES) ? [] : [...new Set(workspaces)].filter((w) => !heldWs.has(w)).sort();
  if (missingScopes.length === 0 && missingWs.length === 0) return;
  const parts: string[] = [];
  if (missingScopes.length) parts.push(`scopes ${missingScopes.join(', ')}`);
  if (missingWs.length) parts.push(`workspaces ${missingWs.join(', ')}`);
  throw new ApiError('token.privilege_escalation', `Cannot grant what the caller does not hold: ${parts.join('; ')}`);
}
