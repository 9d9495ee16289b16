import { splitList } from '../util/list';
import { compilePattern, pathSegments, type PathPattern } from './pattern';

export type RouteAuth = 'public' | 'optional' | 'required';
export const ROUTE_AUTH: readonly RouteAuth[] = ['public', 'optional', 'required'];

/** A workspace requirement: a literal id, or the name of a captured path parameter. */
export type WorkspaceRef = { readonly literal: string } | { readonly param: string };

export interface Rule {
  readonly methods?: ReadonlySet<string> | undefined;
  readonly path: PathPattern;
  readonly scopes: readonly string[];
  readonly workspace?: WorkspaceRef | undefined;
  readonly auth?: RouteAuth | undefined;
  /** `false`: shadow — a would-be denial is decided, logged and counted, then allowed. */
  readonly enforce?: boolean | undefined;
  /** `aud` of the identity assertion for this route. */
  readonly audience?: string | undefined;
}

export interface PolicyDefault {
  readonly scopes: readonly string[];
  readonly auth?: RouteAuth | undefined;
  readonly workspace?: string | undefined;
  readonly enforce?: boolean | undefined;
  readonly audience?: string | undefined;
}

export interface Policy {
  readonly rules: readonly Rule[];
  readonly default: PolicyDefault;
  /** Where the policy came from, for logs and /readyz. */
  readonly origin: string;
}

/** What one request needs, after the policy and Envoy's per-route context_extensions. */
export interface Requirement {
  readonly scopes: readonly string[];
  readonly workspace?: string | undefined;
  readonly auth?: RouteAuth | undefined;
  /** `rules[3]`, `default`, plus `+context_extensions` when Envoy overrode it. */
  readonly matched: string;
  /** The matched rule's path pattern as written (undefined for the default). */
  readonly pattern?: string | undefined;
  /** `false` when the route is in shadow mode (rule/default `enforce: false`, context extension `enforce=false`). */
  readonly enforce?: boolean | undefined;
  /** The assertion audience: rule `audience`, else context extension `assertion_audience`. */
  readonly audience?: string | undefined;
}

export function parseWorkspaceRef(value: string): WorkspaceRef {
  const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}$/.exec(value);
  return m ? { param: m[1]! } : { literal: value };
}

/**
 * Requirements already decided, per policy, by method then path: a policy is immutable (a reload is
 * a new Policy object), so the answer for one (method, path) never changes, and most traffic is a
 * few hot routes. Bounded: past MAX_MEMO entries it starts over, so a flood of unique paths costs
 * one evaluation each and no memory. The paths are normalised ones (no query string), which are
 * logged anyway.
 */
interface Memo {
  size: number;
  readonly byMethod: Map<string, Map<string, Requirement>>;
}
const memos = new WeakMap<Policy, Memo>();
const MAX_MEMO = 4096;

/** First matching rule wins; unmatched requests get the default (authentication only, built in). */
export function evaluatePolicy(policy: Policy, method: string, path: string): Requirement {
  let memo = memos.get(policy);
  if (!memo) memos.set(policy, (memo = { size: 0, byMethod: new Map() }));
  let byPath = memo.byMethod.get(method);
  const hit = byPath?.get(path);
  if (hit) return hit;
  // A copy of its own: `path` may be a slice of the raw request path, query string (a token in
  // `?access_token=`) included, which the memo, and the parameters split from it, would keep alive.
  const own = Buffer.from(path, 'utf8').toString('utf8');
  const req = evaluateRules(policy, method, own);
  if (memo.size >= MAX_MEMO) {
    memo.byMethod.clear();
    memo.size = 0;
    byPath = undefined;
  }
  if (!byPath) memo.byMethod.set(method, (byPath = new Map()));
  byPath.set(own, req);
  memo.size++;
  return req;
}

function evaluateRules(policy: Policy, method: string, path: string): Requirement {
  const segments = pathSegments(path);
  for (let i = 0; segments && i < policy.rules.length; i++) {
    const r = policy.rules[i]!;
    if (r.methods && !r.methods.has(method)) continue;
    const params = r.path.matchSegments(segments);
    if (!params) continue;
    if (!r.workspace || 'literal' in r.workspace) return fixedRequirement(policy, i);
    return Object.freeze({ scopes: r.scopes, workspace: params[r.workspace.param], auth: r.auth, matched: `rules[${i}]`, pattern: r.path.source, enforce: r.enforce, audience: r.audience });
  }
  return fixedRequirement(policy, -1);
}

/**
 * A rule whose workspace is not a path parameter (and the default) requires the same for every
 * request it matches: built once per policy, frozen, shared. -1 is the default.
 */
const fixed = new WeakMap<Policy, Map<number, Requirement>>();
function fixedRequirement(policy: Policy, i: number): Requirement {
  let byRule = fixed.get(policy);
  if (!byRule) fixed.set(policy, (byRule = new Map()));
  let req = byRule.get(i);
  if (!req) {
    const r = policy.rules[i];
    const workspace = r?.workspace && 'literal' in r.workspace ? r.workspace.literal : undefined;
    req = Object.freeze(r ? { scopes: r.scopes, workspace, auth: r.auth, matched: `rules[${i}]`, pattern: r.path.source, enforce: r.enforce, audience: r.audience } : { ...policy.default, matched: 'default' });
    byRule.set(i, req);
  }
  return req;
}

/**
 * Envoy per-route `context_extensions` take precedence over the policy: `required_scopes`
 * (comma/space list; replaces the policy's scopes), `required_workspace`, `auth`. An `auth` value
 * that is not one of the three is treated as `required`: a typo must never open a route.
 */
export function applyContextExtensions(req: Requirement, ext: Readonly<Record<string, string>> | undefined): Requirement {
  if (!ext) return req;
  const scopes = ext.required_scopes;
  const workspace = ext.required_workspace;
  const auth = ext.auth;
  const enforce = ext.enforce;
  const audience = ext.assertion_audience;
  if (scopes === undefined && workspace === undefined && auth === undefined && enforce === undefined && audience === undefined) return req;
  const a = auth === undefined ? req.auth : (ROUTE_AUTH as readonly string[]).includes(auth.trim().toLowerCase()) ? (auth.trim().toLowerCase() as RouteAuth) : 'required';
  return {
    scopes: scopes === undefined ? req.scopes : splitList(scopes),
    workspace: workspace === undefined ? req.workspace : workspace.trim() || undefined,
    auth: a,
    matched: `${req.matched}+context_extensions`,
    pattern: req.pattern,
    // Only an explicit `false` turns enforcement off: a typo must never make a route shadow.
    enforce: enforce === undefined ? req.enforce : enforce.trim().toLowerCase() === 'false' ? false : req.enforce,
    // The rule's own audience wins over the proxy's hint (contract: rule, then context extension).
    audience: req.audience ?? (audience?.trim() || undefined),
  };
}

/** "1 rule", "8 rules": for log lines and check-config. */
export function ruleCount(policy: Policy): string {
  return `${policy.rules.length} rule${policy.rules.length === 1 ? '' : 's'}`;
}

export { compilePattern };
