/**
 * Verified claims → Identity. Providers disagree on how to spell scopes and workspaces (OAuth
 * `scope` strings, Azure `scp`, arrays, JSON-encoded arrays in a string, a custom `orcheo` object),
 * so every known spelling is read and the union kept. Anything of an unexpected type is ignored
 * rather than rejected: a garbage optional claim must not lock a user out, nor crash us.
 */
import { splitList } from '../../util/list';
import type { JWTPayload } from 'jose';
import type { Identity, IdentityType } from '../types';

const SCOPE_CLAIMS = ['scope', 'scopes', 'scp'] as const;
const WORKSPACE_CLAIMS = ['workspace_ids', 'workspaces', 'workspace_id', 'workspace'] as const;
const TYPE_CLAIMS = ['token_use', 'type', 'typ'] as const;
const SERVICE_TYPES: ReadonlySet<string> = new Set(['client', 'service']);

/** Bounds on hostile claim values: nesting depth and number of collected items per identity. */
const MAX_DEPTH = 3;
const MAX_ITEMS = 1000;

/**
 * Adds the items of one claim value to `out`: a space/comma separated string, a string holding a
 * JSON list (`'["a","b"]'`), or an array of either. Numbers, objects, booleans are skipped.
 */
export function collectItems(value: unknown, out: Set<string>, depth = 0): void {
  if (depth > MAX_DEPTH || out.size >= MAX_ITEMS) return;
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('[')) {
      const parsed = parseJsonList(text);
      if (parsed) {
        collectItems(parsed, out, depth + 1);
        return;
      }
    }
    for (const item of splitList(text)) {
      if (out.size < MAX_ITEMS) out.add(item);
    }
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collectItems(item, out, depth + 1);
  }
}

function parseJsonList(text: string): unknown[] | undefined {
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) ? parsed : undefined;
  } catch {
    return undefined; // "[not json" is treated as a plain delimited string
  }
}

function nestedOrcheo(payload: JWTPayload): Record<string, unknown> | undefined {
  const nested = payload['orcheo'];
  return nested && typeof nested === 'object' && !Array.isArray(nested) ? (nested as Record<string, unknown>) : undefined;
}

/**
 * Tokens with identical scope (or workspace) lists share one read-only Set: a deployment's tokens
 * carry a few distinct lists, and in a full verified-token cache a token's own two Sets and their
 * strings were ~40 % of its entry. Bounded (distinct lists and their length) so that issued
 * tokens with ever-new lists cannot grow it: past the bounds a Set is simply not shared.
 */
const SHARED_SETS = new Map<string, ReadonlySet<string>>();
const MAX_SHARED_SETS = 1024;
const MAX_SHARED_KEY = 2048;
function shared(set: Set<string>): ReadonlySet<string> {
  let key = '';
  for (const item of set) {
    key += `${item}\u0000`;
    if (key.length > MAX_SHARED_KEY) return set;
  }
  const hit = SHARED_SETS.get(key);
  if (hit) return hit;
  if (SHARED_SETS.size < MAX_SHARED_SETS) SHARED_SETS.set(key, set);
  return set;
}

export function scopesOf(payload: JWTPayload): Set<string> {
  const out = new Set<string>();
  for (const claim of SCOPE_CLAIMS) collectItems(payload[claim], out);
  collectItems(nestedOrcheo(payload)?.['scopes'], out);
  return out;
}

export function workspacesOf(payload: JWTPayload): Set<string> {
  const out = new Set<string>();
  for (const claim of WORKSPACE_CLAIMS) collectItems(payload[claim], out);
  collectItems(nestedOrcheo(payload)?.['workspace_ids'], out);
  return out;
}

/** The first of token_use / type / typ that is a non-empty string decides; `client`/`service` mean a machine. */
export function identityTypeOf(payload: JWTPayload): IdentityType {
  for (const claim of TYPE_CLAIMS) {
    const value = payload[claim];
    if (typeof value === 'string' && value.trim()) {
      return SERVICE_TYPES.has(value.trim().toLowerCase()) ? 'service' : 'user';
    }
  }
  return 'user';
}

export type ClaimsOutcome =
  | { readonly ok: true; readonly identity: Identity }
  | { readonly ok: false; readonly detail: string; readonly subject: string | undefined };

export interface ClaimPolicy {
  /** A token without `exp` is refused (ORCHEO_AUTH_JWT_REQUIRE_EXP, default true). */
  readonly requireExp?: boolean | undefined;
  /** A `*` workspace grants every workspace (ORCHEO_AUTH_JWT_WILDCARD_WORKSPACE, default false: dropped). */
  readonly wildcardWorkspace?: boolean | undefined;
}

/**
 * C0 controls, DEL and C1 controls. These values become `x-orcheo-*` header values and log fields:
 * a CR/LF/NUL there could split a header line at a proxy that does not validate, so such a token is
 * refused outright rather than cleaned (a cleaned value could collide with another identity).
 */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** Looks at the raw claim (strings, arrays, JSON-list strings alike), before any splitting on whitespace. */
function hasControl(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return CONTROL.test(value);
  if (Array.isArray(value) && depth <= MAX_DEPTH) return value.some((v) => hasControl(v, depth + 1));
  return false;
}

function claimsHaveControl(payload: JWTPayload): boolean {
  const nested = nestedOrcheo(payload);
  return (
    hasControl(payload.jti) ||
    SCOPE_CLAIMS.some((c) => hasControl(payload[c])) ||
    WORKSPACE_CLAIMS.some((c) => hasControl(payload[c])) ||
    hasControl(nested?.['scopes']) ||
    hasControl(nested?.['workspace_ids'])
  );
}

/**
 * Checks what jose leaves to the caller (a usable `sub`; `iat` not in the future beyond the leeway,
 * as PyJWT does; `exp` present unless the operator opted out; no control characters in any value
 * that reaches a header) and builds the identity. Called only on a verified payload.
 */
export function identityFromClaims(payload: JWTPayload, nowMs: number, leewaySeconds: number, policy: ClaimPolicy = {}): ClaimsOutcome {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0) {
    return { ok: false, detail: 'token has no string "sub" claim', subject: undefined };
  }
  // A subject with control characters is never a usable rate-limit key either.
  if (CONTROL.test(sub)) return { ok: false, detail: '"sub" claim contains control characters', subject: undefined };
  if (typeof payload.iat === 'number' && payload.iat > Math.floor(nowMs / 1000) + leewaySeconds) {
    return { ok: false, detail: '"iat" claim is in the future', subject: sub };
  }
  if ((policy.requireExp ?? true) && typeof payload.exp !== 'number') {
    return { ok: false, detail: 'token has no "exp" claim (ORCHEO_AUTH_JWT_REQUIRE_EXP=false accepts it)', subject: sub };
  }
  if (claimsHaveControl(payload)) {
    return { ok: false, detail: '"jti", scope or workspace claim contains control characters', subject: sub };
  }
  const jti = payload.jti;
  const scopes = scopesOf(payload);
  const workspaces = workspacesOf(payload);
  if (!policy.wildcardWorkspace) workspaces.delete('*');
  const identity: Identity = Object.freeze({
    authenticated: true,
    type: identityTypeOf(payload),
    subject: sub,
    tokenId: typeof jti === 'string' && jti.length > 0 ? jti : sub,
    scopes: shared(scopes),
    workspaces: shared(workspaces),
    source: 'jwt' as const,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
  });
  return { ok: true, identity };
}
