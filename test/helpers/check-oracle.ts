/**
 * An independent reference for the fuzz test's "is this allow legitimate?" question, written from
 * the contract (../shared/design/contract.md: "Credentials", "Policy", "Anonymous requests") and
 * RFC 3986, not from src/: its own reading of what Envoy sent, its own path reading, its own
 * matcher for the built-in policy, its own credential rules. Where the contract leaves a reading
 * open, it keeps every candidate and an allow must satisfy all of them; a deny is never wrong here
 * (the deny invariants are checked separately against the contract's code table).
 */

/** What a generated CheckRequest carries, before encoding (the generator records it). */
export interface Sent {
  /** undefined: the field was dropped. */
  readonly method: string | undefined;
  readonly path: string | undefined;
  /** Every header as sent, name as sent. */
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly contextExtensions: Readonly<Record<string, string>> | undefined;
}

export interface Requirement {
  readonly scopes: readonly string[];
  readonly workspace: string | undefined;
  /** The route's mode: the built-in policy has none, so only a context extension sets it. */
  readonly auth: 'public' | 'optional' | 'required';
}

export interface Reading {
  /** The path holds a control character or an escape left after one decoding: only auth.invalid_request is right. */
  readonly mustRefuse: boolean;
  readonly method: string;
  /** One requirement per candidate reading of the path; an allow must satisfy each. */
  readonly requirements: readonly Requirement[];
  readonly preflight: boolean;
  /** Credentials the request presents, by the contract's precedence (several where a reading is open). */
  readonly credentials: readonly string[];
  /** No credential in any form (an empty authorization header counts as none). */
  readonly noCredential: boolean;
}

const READS = new Set(['GET', 'HEAD', 'OPTIONS']);
const CONTROL_CHAR = /[\x00-\x1f\x7f-\x9f]/;

/** Segments after RFC 3986 dot-segment removal, empty segments dropped, `;params` cut (contract, "Policy"). */
function segmentsOf(path: string, backslashIsSlash: boolean): string[] {
  const p = backslashIsSlash ? path.split('\\').join('/') : path;
  const out: string[] = [];
  for (const part of p.split('/')) {
    const seg = part.split(';')[0]!;
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return out;
}

/** The built-in policy from the contract's scope table. */
function builtin(method: string, segs: readonly string[]): { scopes: string[]; workspace: string | undefined } {
  const read = READS.has(method);
  const [a, b, c, d] = segs;
  if (a === 'api' && b === 'workflows') {
    if (method === 'POST' && segs.length === 4 && d === 'runs') return { scopes: ['workflows:execute'], workspace: undefined };
    return { scopes: [read ? 'workflows:read' : 'workflows:write'], workspace: undefined };
  }
  if (a === 'api' && b === 'credentials') return { scopes: [read ? 'vault:read' : 'vault:write'], workspace: undefined };
  if (a === 'api' && b === 'admin' && c === 'service-tokens') return { scopes: [read ? 'admin:tokens:read' : 'admin:tokens:write'], workspace: undefined };
  if (a === 'api' && b === 'workspaces' && segs.length >= 3) return { scopes: [], workspace: c };
  return { scopes: [], workspace: undefined };
}

/** Context extensions take precedence (contract, "Policy"). An unknown `auth` value is the strictest mode. */
function withExtensions(base: { scopes: string[]; workspace: string | undefined }, ext: Readonly<Record<string, string>> | undefined): Requirement[] {
  if (!ext) return [{ ...base, auth: 'required' }];
  const auth = ext.auth?.trim().toLowerCase();
  const mode = auth === 'public' || auth === 'optional' ? auth : 'required';
  // The operator's override wins even when it lists nothing: an empty required_scopes is "no scopes".
  // (For configuration the oracle takes the most lenient reading: it must never call a configured allow illegitimate.)
  const scopes = ext.required_scopes === undefined ? base.scopes : ext.required_scopes.split(/[\s,]+/).filter(Boolean);
  const workspace = ext.required_workspace === undefined ? base.workspace : ext.required_workspace.trim() || undefined;
  return [{ scopes, workspace, auth: mode }];
}

function decodeOnce(p: string): { value: string; clean: boolean } {
  try {
    return { value: decodeURIComponent(p), clean: true };
  } catch {
    return { value: p, clean: false };
  }
}

function headerValues(sent: Sent, name: string): string[] {
  return sent.headers.filter(([k]) => k.toLowerCase() === name).map(([, v]) => v);
}

function credentialsOf(sent: Sent, rawPath: string): { credentials: string[]; none: boolean } {
  const auths = headerValues(sent, 'authorization').filter((v) => v.trim() !== '');
  // 1. authorization: Bearer <token>; any authorization header is the credential when present.
  if (auths.length > 0) {
    const tokens = auths.map((v) => /^bearer[ \t]+(\S+)[ \t]*$/i.exec(v)?.[1]).filter((t): t is string => t !== undefined);
    return { credentials: tokens, none: false };
  }
  const upgrade = headerValues(sent, 'upgrade').some((v) => v.toLowerCase().split(',').map((s) => s.trim()).includes('websocket'));
  if (!upgrade) return { credentials: [], none: true };
  // 2. sec-websocket-protocol entry bearer.<token>.
  const protos = headerValues(sent, 'sec-websocket-protocol').flatMap((v) => v.split(',').map((s) => s.trim()));
  const fromProto = protos.filter((p) => p.toLowerCase().startsWith('bearer.') && p.length > 7).map((p) => p.slice(7));
  if (fromProto.length > 0) return { credentials: fromProto, none: false };
  // 3. query access_token, then token: literal names only. A parameter with no value (`access_token=`,
  // `access_token`) presents no token, so the next one in precedence order is the credential.
  const q = rawPath.indexOf('?');
  const params = q < 0 ? [] : rawPath.slice(q + 1).split('#')[0]!.split('&').map((kv) => (kv.includes('=') ? ([kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as const) : ([kv, ''] as const)));
  for (const name of ['access_token', 'token']) {
    const hit = params.find(([k, v]) => k === name && v !== '');
    if (hit) return { credentials: [decodeOnce(hit[1]).value, hit[1]], none: false };
  }
  return { credentials: [], none: true };
}

export function readRequest(sent: Sent): Reading {
  const method = (sent.method || 'GET').toUpperCase();
  const rawPath = sent.path || '/';
  const bare = rawPath.split(/[?#]/)[0]!;
  const decoded = decodeOnce(bare);
  const mustRefuse = CONTROL_CHAR.test(bare) || CONTROL_CHAR.test(decoded.value) || (decoded.clean && /%[0-9a-fA-F]{2}/.test(decoded.value));
  // Candidate readings where the contract is silent: a backslash, a malformed escape, a dot segment with parameters.
  const paths = decoded.clean ? [decoded.value] : [bare, bare.replace(/%([0-9a-fA-F]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)))];
  const requirements: Requirement[] = [];
  for (const p of paths) {
    for (const backslash of p.includes('\\') ? [true, false] : [false]) {
      requirements.push(...withExtensions(builtin(method, segmentsOf(p, backslash)), sent.contextExtensions));
      if (/(^|\/)\.\.?;/.test(p)) requirements.push(...withExtensions(builtin(method, segmentsOf(p.replace(/(^|\/)(\.\.?);[^/]*/g, '$1_$2'), backslash)), sent.contextExtensions));
    }
  }
  const preflight = method === 'OPTIONS' && headerValues(sent, 'origin').length > 0 && headerValues(sent, 'access-control-request-method').length > 0;
  const { credentials, none } = credentialsOf(sent, rawPath);
  return { mustRefuse, method, requirements, preflight, credentials, noCredential: none };
}
