import { readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import type { Logger } from 'pino';
import { compilePattern, PatternError } from './pattern';
import { parseWorkspaceRef, ROUTE_AUTH, ruleCount, type Policy, type RouteAuth, type Rule } from './policy';
import { isKnownScope, isValidWorkspaceId } from './scopes';

export class PolicyError extends Error {
  readonly code = 'policy.invalid' as const;
  constructor(readonly file: string, readonly problems: readonly string[]) {
    super(`invalid policy file ${file}:\n  - ${problems.join('\n  - ')}`);
    this.name = 'PolicyError';
  }
}

// RFC 9110 `token`: extension methods (FETCH, PROPFIND, …) are methods too.
const METHOD_TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const RULE_KEYS = new Set(['match', 'scopes', 'workspace', 'auth', 'enforce', 'audience']);
const MATCH_KEYS = new Set(['methods', 'path']);
const DEFAULT_KEYS = new Set(['scopes', 'auth', 'workspace', 'enforce', 'audience']);
const MAX_BYTES = 1024 * 1024;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function unknownKeys(o: Record<string, unknown>, allowed: Set<string>, at: string, out: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.has(k)) out.push(`${at}.${k}: unknown field (expected one of ${[...allowed].join(', ')})`);
}

function scopes(v: unknown, at: string, out: string[]): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) {
    out.push(`${at}: expected a list of scope strings`);
    return [];
  }
  for (const s of v) if (!isKnownScope(s)) out.push(`${at}: unknown scope ${JSON.stringify(s)}`);
  return v;
}

function auth(v: unknown, at: string, out: string[]): RouteAuth | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !(ROUTE_AUTH as readonly string[]).includes(v)) {
    out.push(`${at}: expected one of ${ROUTE_AUTH.join(', ')}, got ${JSON.stringify(v)}`);
    return undefined;
  }
  return v as RouteAuth;
}

function enforce(v: unknown, at: string, out: string[]): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') return void out.push(`${at}: expected true or false, got ${JSON.stringify(v)}`);
  return v;
}

// An audience goes into a JWT claim and a cache key: printable, no spaces, bounded.
const AUDIENCE = /^[\x21-\x7e]{1,256}$/;

function audience(v: unknown, at: string, out: string[]): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !AUDIENCE.test(v)) return void out.push(`${at}: expected an audience string (1-256 printable characters, no spaces)`);
  return v;
}

function methodSet(v: unknown, at: string, out: string[]): Set<string> | undefined {
  if (!Array.isArray(v) || v.length === 0) return void out.push(`${at}: expected a non-empty list of HTTP methods such as [GET, HEAD]`);
  const bad = v.filter((x) => typeof x !== 'string' || !METHOD_TOKEN.test(x));
  for (const x of bad) out.push(`${at}: ${JSON.stringify(x)} is not an HTTP method token (RFC 9110: letters, digits and !#$%&'*+-.^_\`|~)`);
  return bad.length > 0 ? undefined : new Set(v.map((x: string) => x.toUpperCase()));
}

function rule(v: unknown, at: string, out: string[]): Rule | undefined {
  if (!isObj(v)) return void out.push(`${at}: expected a mapping with a "match" field`);
  unknownKeys(v, RULE_KEYS, at, out);
  const m = v.match;
  if (!isObj(m)) return void out.push(`${at}.match: required, a mapping with "path" (and optional "methods")`);
  unknownKeys(m, MATCH_KEYS, `${at}.match`, out);
  const methods = m.methods === undefined ? undefined : methodSet(m.methods, `${at}.match.methods`, out);
  if (typeof m.path !== 'string') return void out.push(`${at}.match.path: required, a string such as /api/workflows/**`);
  let path;
  try {
    path = compilePattern(m.path);
  } catch (err) {
    if (!(err instanceof PatternError)) throw err;
    return void out.push(`${at}.match.path: ${err.message}`);
  }
  let workspace: Rule['workspace'];
  if (v.workspace !== undefined) {
    if (typeof v.workspace !== 'string') out.push(`${at}.workspace: expected a string ("{param}" or a workspace id)`);
    else {
      workspace = parseWorkspaceRef(v.workspace);
      if ('param' in workspace && !path.params.includes(workspace.param)) out.push(`${at}.workspace: {${workspace.param}} is not captured by path ${m.path}`);
      if ('literal' in workspace && !isValidWorkspaceId(workspace.literal)) out.push(`${at}.workspace: invalid workspace id ${JSON.stringify(v.workspace)}`);
    }
  }
  return Object.freeze({ methods, path, scopes: Object.freeze(scopes(v.scopes, `${at}.scopes`, out)), workspace, auth: auth(v.auth, `${at}.auth`, out), enforce: enforce(v.enforce, `${at}.enforce`, out), audience: audience(v.audience, `${at}.audience`, out) });
}

/** Parses and validates a policy document, reporting every problem at once. */
export function parsePolicy(text: string, origin: string): Policy {
  const out: string[] = [];
  let doc: unknown;
  try {
    // yaml loads (~45 ms of CPU) only when there is a policy file to read: the built-in policy needs none.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    doc = (require('yaml') as typeof import('yaml')).parse(text, { prettyErrors: true, maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyError(origin, [`not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`]);
  }
  if (!isObj(doc)) throw new PolicyError(origin, ['expected a mapping with "rules" (and optional "default")']);
  unknownKeys(doc, new Set(['rules', 'default']), '$', out);
  if (!Array.isArray(doc.rules)) out.push('rules: required, a list of rules');
  const rules = Array.isArray(doc.rules) ? doc.rules.map((r, i) => rule(r, `rules[${i}]`, out)) : [];
  let def: Policy['default'] = { scopes: [] };
  if (doc.default !== undefined) {
    if (!isObj(doc.default)) out.push('default: expected a mapping');
    else {
      unknownKeys(doc.default, DEFAULT_KEYS, 'default', out);
      const ws = doc.default.workspace;
      if (ws !== undefined && (typeof ws !== 'string' || !isValidWorkspaceId(ws))) out.push('default.workspace: expected a workspace id');
      def = {
        scopes: scopes(doc.default.scopes, 'default.scopes', out),
        auth: auth(doc.default.auth, 'default.auth', out),
        workspace: typeof ws === 'string' ? ws : undefined,
        enforce: enforce(doc.default.enforce, 'default.enforce', out),
        audience: audience(doc.default.audience, 'default.audience', out),
      };
    }
  }
  if (out.length > 0) throw new PolicyError(origin, out);
  return Object.freeze({ rules: Object.freeze(rules as Rule[]), default: Object.freeze(def), origin });
}

export function loadPolicyFile(file: string): Policy {
  let text: string;
  try {
    if (statSync(file).size > MAX_BYTES) throw new PolicyError(file, [`larger than ${MAX_BYTES} bytes`]);
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if (err instanceof PolicyError) throw err;
    throw new PolicyError(file, [`cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`]);
  }
  return parsePolicy(text, file);
}

/**
 * Holds the current policy and reloads the file when it changes. Polling stat() follows symlinks,
 * so a Kubernetes ConfigMap update (an atomic `..data` symlink swap) is seen like an edit. An invalid
 * new version is logged and the previous policy stays in force.
 */
export class PolicySource {
  private current: Policy;
  private watching = false;
  /** For metrics: failed reloads, successful loads (1 = the initial one), and when the current one was loaded. */
  reloadFailures = 0;
  revision = 1;
  loadedAtMs = Date.now();

  constructor(initial: Policy, private readonly file: string | undefined, private readonly logger: Logger, private readonly pollMs = 1000) {
    this.current = initial;
  }

  get policy(): Policy {
    return this.current;
  }

  reload(): boolean {
    if (!this.file) return false;
    try {
      this.current = loadPolicyFile(this.file);
      this.revision++;
      this.loadedAtMs = Date.now();
      this.logger.info({ file: this.file, rules: this.current.rules.length }, `policy reloaded: ${ruleCount(this.current)}`);
      return true;
    } catch (err) {
      this.reloadFailures++;
      this.logger.error({ err: (err as Error).message }, 'policy reload failed; keeping the previous policy');
      return false;
    }
  }

  watch(): void {
    if (!this.file || this.watching) return;
    this.watching = true;
    watchFile(this.file, { interval: this.pollMs, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload();
    });
  }

  close(): void {
    if (this.file && this.watching) unwatchFile(this.file);
    this.watching = false;
  }
}
