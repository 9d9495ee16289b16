/** The guide's scopes. Matching is exact and case-sensitive. */
export const ALL_SCOPES = [
  'workflows:read',
  'workflows:write',
  'workflows:execute',
  'vault:read',
  'vault:write',
  'admin:tokens:read',
  'admin:tokens:write',
] as const;

export type Scope = (typeof ALL_SCOPES)[number];

const KNOWN: ReadonlySet<string> = new Set(ALL_SCOPES);

export function isKnownScope(s: string): s is Scope {
  return KNOWN.has(s);
}

/** Grants every workspace. */
export const ALL_WORKSPACES = '*';

/** Workspace ids: 1–128 characters of letters, digits, `-`, `_`, `.`, `:`; or `*`. */
export function isValidWorkspaceId(w: string): boolean {
  return w === ALL_WORKSPACES || /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(w);
}
