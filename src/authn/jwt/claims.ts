/**
 * Verified claims → Identity. Providers disagree on how to spell scopes and workspaces (OAuth
 * `scope` strings, Azure `scp`, arrays, JSON-encoded arrays in a string, a custom `orcheo` object),
 * so every known spelling is read and the union kept. Anything of an unexpected type is ignored
 * rather than rejected: a garbage optional claim must not lock a user out, nor crash us.
 */
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
    for (const item of text.split(/[\s,]+/)) {
      if (item && out.size < MAX_ITEMS) out.add(item);
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

/**
 * Checks what jose leaves to the caller (a usable `sub`; `iat` not in the future beyond the leeway,
 * as PyJWT does) and builds the identity. Called only on a verified payload.
 */
export function identityFromClaims(payload: JWTPayload, nowMs: number, leewaySeconds: number): ClaimsOutcome {
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0) {
    return { ok: false, detail: 'token has no string "sub" claim', subject: undefined };
  }
  if (typeof payload.iat === 'number' && payload.iat > Math.floor(nowMs / 1000) + leewaySeconds) {
    return { ok: false, detail: '"iat" claim is in the future', subject: sub };
  }
  const jti = payload.jti;
  const identity: Identity = Object.freeze({
    authenticated: true,
    type: identityTypeOf(payload),
    subject: sub,
    tokenId: typeof jti === 'string' && jti.length > 0 ? jti : sub,
    scopes: scopesOf(payload),
    workspaces: workspacesOf(payload),
    source: 'jwt' as const,
    expiresAt: typeof payload.exp === 'number' ? payload.exp * 1000 : undefined,
  });
  return { ok: true, identity };
}
