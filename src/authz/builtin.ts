import { compilePattern, type Policy, type Rule } from './policy';

const READ = new Set(['GET', 'HEAD']);
const WRITE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const rule = (path: string, scopes: string[], methods?: Set<string>, extra: Partial<Rule> = {}): Rule =>
  Object.freeze({ path: compilePattern(path), scopes: Object.freeze(scopes), methods, ...extra });

/**
 * The Orcheo API policy from the guide's scope table, used when ORCHEO_AUTH_POLICY_FILE is unset.
 * The execute rule precedes the generic write rule: first match wins.
 */
export const BUILTIN_POLICY: Policy = Object.freeze({
  origin: 'built-in Orcheo API policy',
  rules: Object.freeze([
    rule('/api/workflows/{workflow_id}/runs', ['workflows:execute'], new Set(['POST'])),
    rule('/api/workflows/**', ['workflows:read'], READ),
    rule('/api/workflows/**', ['workflows:write'], WRITE),
    rule('/api/credentials/**', ['vault:read'], READ),
    rule('/api/credentials/**', ['vault:write'], WRITE),
    rule('/api/admin/service-tokens/**', ['admin:tokens:read'], READ),
    rule('/api/admin/service-tokens/**', ['admin:tokens:write'], WRITE),
    rule('/api/workspaces/{workspace_id}/**', [], undefined, { workspace: { param: 'workspace_id' } }),
  ]),
  default: Object.freeze({ scopes: Object.freeze([]) }),
});
