import { compilePattern, type Policy, type Rule } from './policy';

// Reads; every other method (TRACE, PROPFIND, CONNECT, extension methods) falls through to the
// write rule after each read rule, which matches any method. A CORS preflight never gets here.
const READ = new Set(['GET', 'HEAD', 'OPTIONS']);

const rule = (path: string, scopes: string[], methods?: Set<string>, extra: Partial<Rule> = {}): Rule =>
  Object.freeze({ path: compilePattern(path), scopes: Object.freeze(scopes), methods, ...extra });

/**
 * The Orcheo API policy from the guide's scope table, used when ORCHEO_AUTH_POLICY_FILE is unset.
 * The execute rule precedes the generic write rule: first match wins. Each write rule has no
 * method list, so no method reaches a guarded prefix with authentication alone.
 */
export const BUILTIN_POLICY: Policy = Object.freeze({
  origin: 'built-in Orcheo API policy',
  rules: Object.freeze([
    rule('/api/workflows/{workflow_id}/runs', ['workflows:execute'], new Set(['POST'])),
    rule('/api/workflows/**', ['workflows:read'], READ),
    rule('/api/workflows/**', ['workflows:write']),
    rule('/api/credentials/**', ['vault:read'], READ),
    rule('/api/credentials/**', ['vault:write']),
    rule('/api/admin/service-tokens/**', ['admin:tokens:read'], READ),
    rule('/api/admin/service-tokens/**', ['admin:tokens:write']),
    rule('/api/workspaces/{workspace_id}/**', [], undefined, { workspace: { param: 'workspace_id' } }),
  ]),
  default: Object.freeze({ scopes: Object.freeze([]) }),
});
