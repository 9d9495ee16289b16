import type { Identity } from '../authn/types';
import { ALL_WORKSPACES } from '../authz/scopes';
import type { Requirement } from '../authz/policy';
import { AuthError } from '../errors/deny';

/**
 * Phase 3, authorize: every required scope (exact, case-sensitive), then the workspace the request
 * touches. An identity without workspaces is denied on workspace-bound routes; `*` grants all.
 */
export function authorize(identity: Identity, req: Requirement): AuthError | undefined {
  // A loop, not filter: an allowed Check builds no array.
  let missing: string[] | undefined;
  for (const s of req.scopes) if (!identity.scopes.has(s)) (missing ??= []).push(s);
  if (missing) return new AuthError('auth.missing_scope', `Missing required scopes: ${missing.join(', ')}`);
  if (req.workspace !== undefined && !identity.workspaces.has(ALL_WORKSPACES) && !identity.workspaces.has(req.workspace)) {
    return new AuthError('auth.workspace_forbidden', 'Workspace access denied', { detail: `workspace ${req.workspace}` });
  }
  return undefined;
}

export { identityKey } from './identity-key';
