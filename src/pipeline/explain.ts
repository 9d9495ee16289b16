import { looksLikeJwt } from '../authn/service-token';
import type { Identity } from '../authn/types';
import type { AuthMode } from '../config/types';
import { DENY_CODES, type AuthError, type DenyCode } from '../errors/deny';
import type { WindowState } from '../ratelimit/types';
import type { Decision } from './decision';
import type { Credential } from './extract';

export type CredentialKind = 'bootstrap' | 'service_token' | 'jwt' | 'unknown';

/** What explain's run of the pipeline noted on the way; never the credential itself. */
export interface Trace {
  credential?: Pick<Credential, 'via' | 'queryParam'> | undefined;
  kind?: CredentialKind | undefined;
  authError?: AuthError | undefined;
  identity?: Identity | undefined;
  windows: { window: 'ip' | 'identity'; subject: string; state: WindowState }[];
  limiterUnavailable?: boolean | undefined;
}

/**
 * Which kind the credential belongs to, from what authentication said: the identity's source, else the
 * namespaced key a rejection carried (identity-key.ts), else the JWT shape; a token no kind knows is `unknown`.
 */
export function credentialKind(token: string, v: { identity?: Identity | undefined; key?: string | undefined }): CredentialKind {
  const source = v.identity?.authenticated ? v.identity.source : undefined;
  if (source && source !== 'none') return source;
  if (v.key === 'bootstrap') return 'bootstrap';
  if (v.key?.startsWith('st:')) return 'service_token';
  return v.key?.startsWith('jwt:') || looksLikeJwt(token) ? 'jwt' : 'unknown';
}

export interface ExplainedWindow {
  readonly window: 'ip' | 'identity';
  readonly subject: string;
  readonly count: number;
  readonly limit: number;
  readonly blocked: boolean;
  readonly retry_after_seconds: number;
  readonly blocked_until: string | null;
}

/** `POST /api/admin/explain`'s answer and `explain --json`'s output: field names are stable. */
export interface Explanation {
  readonly request_id: string;
  readonly request: { readonly method: string | null; readonly path: string | null; readonly client_ip: string | null };
  readonly mode: AuthMode;
  readonly dry_run: boolean;
  /** Set when no phase ran: `disabled` mode, a CORS preflight, an unreadable request. */
  readonly note: string | null;
  readonly credential: { readonly found: boolean; readonly where: 'header' | 'websocket_protocol' | 'query' | null; readonly name: string | null; readonly kind: CredentialKind | null; readonly accepted: boolean | null; readonly code: DenyCode | null };
  readonly identity: { readonly type: string; readonly subject: string; readonly source: string; readonly scopes: string[]; readonly workspaces: string[]; readonly expires_at: string | null } | null;
  readonly rule: { readonly matched: string; readonly position: number | null; readonly pattern: string | null; readonly policy: string; readonly context_extensions: boolean } | null;
  readonly requirement: { readonly auth: string; readonly scopes: string[]; readonly workspace: string | null; readonly enforce: boolean } | null;
  readonly rate_limits: { readonly enabled: boolean; readonly available: boolean; readonly windows: ExplainedWindow[] };
  readonly decision: { readonly allow: boolean; readonly status: number; readonly code: DenyCode | null; readonly message: string | null; readonly shadow: boolean };
  readonly would_change: string[];
}

export interface ExplainInput {
  readonly decision: Decision;
  readonly trace: Trace;
  readonly mode: AuthMode;
  readonly dryRun: boolean;
  readonly policyOrigin: string;
  readonly clientIp: string | undefined;
  readonly limitsOn: boolean;
  readonly nowMs: number;
}

const WHERE = { authorization: ['header', 'authorization'], websocket_protocol: ['websocket_protocol', 'sec-websocket-protocol'] } as const;
const sorted = (s: ReadonlySet<string>): string[] => [...s].sort();
const list = (xs: readonly string[], none: string): string => (xs.length ? xs.join(', ') : none);
const clock = (iso: string): string => `${iso.slice(11, 19)} UTC`;

function explainWindow(w: Trace['windows'][number], nowMs: number): ExplainedWindow {
  const { count, limit, blocked, retryAfterSeconds } = w.state;
  const until = blocked ? new Date(nowMs + retryAfterSeconds * 1000).toISOString() : null;
  return { window: w.window, subject: w.subject, count, limit, blocked, retry_after_seconds: retryAfterSeconds, blocked_until: until };
}

/** For a denial (or a shadow one), what would change it, in the operator's words. */
function hints(error: AuthError, identity: Identity | undefined, req: Decision['requirement'], windows: ExplainedWindow[], limiterDown: boolean): string[] {
  const has = (s: ReadonlySet<string> | undefined, none: string) => list(s ? sorted(s) : [], none);
  switch (error.code) {
    case 'auth.missing_scope':
      return [`needs ${list(req?.scopes.filter((s) => !identity?.scopes.has(s)) ?? [], '?')}; the token has ${has(identity?.scopes, 'no scopes')}`];
    case 'auth.workspace_forbidden':
      return [`workspace ${req?.workspace ?? '?'}; the token has ${has(identity?.workspaces, 'no workspaces')}`];
    case 'auth.rate_limited.ip':
    case 'auth.rate_limited.identity': {
      const kind = error.code === 'auth.rate_limited.ip' ? 'ip' : 'identity';
      return windows.filter((w) => w.window === kind && w.blocked).map((w) => `window for ${kind === 'ip' ? '' : 'identity '}${w.subject} full (${w.count}/${w.limit} failures) until ${clock(w.blocked_until!)}`);
    }
    case 'auth.missing_token':
      return [`the route requires authentication (auth ${req?.auth ?? 'required'}): send Authorization: Bearer <token>`];
    case 'auth.invalid_scheme':
      return ['the Authorization header must use the Bearer scheme'];
    case 'auth.token_expired':
      return ['the credential has expired: a fresh one is needed'];
    case 'auth.backend_unavailable':
      return [limiterDown ? 'the rate limiter is unreachable and fails closed (ORCHEO_AUTH_RATE_LIMIT_FAIL_CLOSED): 503 until Redis answers' : 'a backend (token store, key provider) could not answer: retry when it is back'];
    case 'auth.invalid_request':
      return ['the path cannot be read unambiguously (encoded separators, dot segments or bad escapes)'];
    default:
      return [`the credential was refused (${error.code}: ${error.message}): a valid one is needed`];
  }
}

export function buildExplanation(x: ExplainInput): Explanation {
  const { decision: d, trace: t } = x;
  const req = d.requirement;
  const error = d.allow ? d.shadow : d.error;
  const identity = t.identity ?? (d.allow ? d.identity : d.outcome.identity);
  const who = identity?.authenticated ? identity : undefined;
  const windows = t.windows.map((w) => explainWindow(w, x.nowMs));
  const via = t.credential?.via;
  const [where, name] = via === undefined ? [null, null] : via === 'query' ? (['query', t.credential!.queryParam ?? null] as const) : WHERE[via];
  const position = req ? /^rules\[(\d+)\]/.exec(req.matched)?.[1] : undefined;
  let note: string | null = null;
  if (!d.input) note = 'the request could not be read; no phase ran';
  else if (!req) note = x.mode === 'disabled' ? 'mode disabled: nothing is checked' : 'CORS preflight: allowed without credentials';
  return {
    request_id: d.requestId,
    request: { method: d.input?.method ?? null, path: d.input?.path ?? null, client_ip: x.clientIp ?? null },
    mode: x.mode,
    dry_run: x.dryRun,
    note,
    credential: { found: via !== undefined, where, name, kind: t.kind ?? null, accepted: via === undefined ? null : t.authError === undefined, code: t.authError?.code ?? null },
    identity: who ? { type: who.type, subject: who.subject, source: who.source, scopes: sorted(who.scopes), workspaces: sorted(who.workspaces), expires_at: who.expiresAt === undefined ? null : new Date(who.expiresAt).toISOString() } : null,
    rule: req ? { matched: req.matched, position: position === undefined ? null : Number(position), pattern: req.pattern ?? null, policy: x.policyOrigin, context_extensions: req.matched.endsWith('+context_extensions') } : null,
    requirement: req ? { auth: req.auth ?? x.mode, scopes: [...req.scopes], workspace: req.workspace ?? null, enforce: !(req.enforce === false || x.dryRun) } : null,
    rate_limits: { enabled: x.limitsOn, available: t.limiterUnavailable !== true, windows },
    decision: {
      allow: d.allow,
      status: d.allow ? 200 : DENY_CODES[d.error.code].httpStatus,
      code: error?.code ?? null,
      message: error?.message ?? null,
      shadow: d.allow && d.shadow !== undefined,
    },
    would_change: error ? hints(error, who, req, windows, t.limiterUnavailable === true) : [],
  };
}
