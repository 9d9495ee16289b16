import type { Identity } from '../authn/types';
import type { Header } from './decision';

export const IDENTITY_PREFIX = 'x-orcheo-';

/** Sets are shared by identities of one list (jwt/claims.ts): join each once. */
const joined = new WeakMap<ReadonlySet<string>, string>();
function sorted(s: ReadonlySet<string>): string {
  let j = joined.get(s);
  if (j === undefined) joined.set(s, (j = [...s].sort().join(',')));
  return j;
}

/** The contract's identity fields (headers without the prefix, `dynamic_metadata` keys). */
export function identityFields(id: Identity): Record<string, string> {
  if (!id.authenticated) return { authenticated: 'false', identity_type: 'anonymous' };
  return {
    authenticated: 'true',
    subject: id.subject,
    identity_type: id.type,
    token_id: id.tokenId,
    scopes: sorted(id.scopes),
    workspaces: id.workspaces.has('*') ? '*' : sorted(id.workspaces),
  };
}

export const headerName = (field: string): string => `${IDENTITY_PREFIX}${field.replace(/_/g, '-')}`;

/**
 * Header names and name sets shared by every identity of one field layout (authenticated or
 * anonymous), and the metadata built as a literal: a verified-token cache keeps up to 10 000
 * identities alive, and `Object.freeze({ ...fields, authenticated })` gave each of them a hidden
 * class of its own (~0.4 KB per cached token, with a fresh Set and six name strings besides).
 */
const NAMES = new Map<string, string>();
const internedName = (field: string): string => {
  let n = NAMES.get(field);
  if (n === undefined) NAMES.set(field, (n = headerName(field)));
  return n;
};
const NAME_SETS = new Map<string, ReadonlySet<string>>();
function nameSet(names: readonly string[]): ReadonlySet<string> {
  const key = names.join('\n');
  let set = NAME_SETS.get(key);
  if (!set) NAME_SETS.set(key, (set = new Set(names)));
  return set;
}

function metadataOf(identity: Identity, f: Record<string, string>): Readonly<Record<string, string | boolean>> {
  if (!identity.authenticated) return Object.freeze({ authenticated: false, identity_type: f['identity_type']! });
  return Object.freeze({ authenticated: true, subject: f['subject']!, identity_type: f['identity_type']!, token_id: f['token_id']!, scopes: f['scopes']!, workspaces: f['workspaces']! });
}

interface Derived {
  readonly headers: readonly Header[];
  readonly names: ReadonlySet<string>;
  readonly metadata: Readonly<Record<string, string | boolean>>;
}

/** Identities are immutable and shared by every request of the same credential: derive once. */
const derived = new WeakMap<Identity, Derived>();

function derive(identity: Identity): Derived {
  let d = derived.get(identity);
  if (!d) {
    const fields = identityFields(identity);
    const headers = Object.freeze(Object.entries(fields).map(([k, v]) => Object.freeze([internedName(k), v] as const)));
    d = Object.freeze({
      headers,
      names: nameSet(headers.map(([n]) => n)),
      metadata: metadataOf(identity, fields),
    });
    derived.set(identity, d);
  }
  return d;
}

/** The `x-orcheo-*` headers an allow sets for this identity (one frozen array per identity). */
export function identityHeaders(identity: Identity): readonly Header[] {
  return derive(identity).headers;
}

/** `dynamic_metadata`'s identity fields (`authenticated` as a boolean). */
export function identityMetadata(identity: Identity): Readonly<Record<string, string | boolean>> {
  return derive(identity).metadata;
}

/**
 * Client headers with the identity prefix that this allow does not overwrite: they are removed, so
 * an upstream never sees a spoofed identity. `extra` names headers a decorator sets (assertion).
 */
export function spoofedHeaders(headers: ReadonlyMap<string, string>, identity: Identity): string[] {
  const names = derive(identity).names;
  let out: string[] | undefined;
  for (const name of headers.keys()) if (name.startsWith(IDENTITY_PREFIX) && !names.has(name)) (out ??= []).push(name);
  return out ?? EMPTY;
}

const EMPTY: string[] = Object.freeze([]) as unknown as string[];
