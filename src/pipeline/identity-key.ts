import type { Authenticator, AuthnResult, Identity } from '../authn/types';

/**
 * Per-identity rate-limit keys, namespaced by kind so one kind can never exhaust another's window:
 * a JWT whose `sub` equals a service token's id (or `bootstrap`) gets its own key.
 *   service token → `st:<id>`, JWT → `jwt:<encoded issuer>:<sub>`, bootstrap → `bootstrap`.
 * The issuer is URI-encoded so it holds no `:`; today's identities carry none, which gives `jwt::<sub>`.
 */
export const BOOTSTRAP_KEY = 'bootstrap';

export const serviceTokenKey = (id: string): string => `st:${id}`;

export const jwtKey = (subject: string, issuer?: string): string => `jwt:${encodeURIComponent(issuer ?? '')}:${subject}`;

/** The key of an authenticated identity; the same one its kind's rejections are counted under. */
export function identityKey(identity: Identity): string | undefined {
  if (!identity.authenticated) return undefined;
  if (identity.source === 'jwt') return jwtKey(identity.subject, (identity as { issuer?: string }).issuer);
  if (identity.source === 'bootstrap') return BOOTSTRAP_KEY;
  return serviceTokenKey(identity.tokenId);
}

export type KindName = 'bootstrap' | 'service_token' | 'jwt';

function namespace(kind: KindName, key: string): string {
  if (kind === 'bootstrap') return BOOTSTRAP_KEY;
  if (kind === 'service_token') return serviceTokenKey(key);
  // A JWT authenticator that already builds `jwtKey(sub, iss)` keeps it.
  return key.startsWith('jwt:') ? key : jwtKey(key);
}

function rekey(kind: KindName, r: AuthnResult): AuthnResult {
  if (r.kind !== 'rejected' || r.identityKey === undefined) return r;
  return { kind: 'rejected', error: r.error, identityKey: namespace(kind, r.identityKey) };
}

/**
 * Wraps one identity kind so the bare `identityKey` its rejections carry (token id, subject) is
 * namespaced by that kind, matching `identityKey(identity)` for its allows.
 */
export function withKeyNamespace(kind: KindName, auth: Authenticator): Authenticator {
  return {
    name: auth.name,
    authenticate(token, nowMs, opts) {
      const r = auth.authenticate(token, nowMs, opts);
      return r instanceof Promise ? r.then((x) => rekey(kind, x)) : rekey(kind, r);
    },
  };
}
