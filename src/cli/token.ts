import { splitList } from '../util/list';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AdminApiClient, ApiRefusal, ApiUnreachable } from './api-client';
import { LIMITS } from '../admin/validate';
import { ALL_SCOPES, isKnownScope } from '../authz/scopes';
import { AUDIT_EVENT_NAMES } from '../store/audit';
import { isErrorCode } from '../errors/api';
import { CommandError, UsageError } from './errors';
import { formatAudit, formatCreated, formatList, formatRevoked, formatRotated, formatToken, type AuditJson, type TokenJson } from './format';
import { resolveSettings, type SettingFlags } from './profile';

interface CommonOpts extends SettingFlags {
  readonly json?: boolean;
}

const collect = (value: string, prev: string[]): string[] => [...prev, ...splitList(value)];

function wholeNumber(name: string, min: number, max = Number.MAX_SAFE_INTEGER, unit = ' of seconds'): (v: string) => number {
  return (v: string) => {
    if (!/^\d{1,12}$/.test(v.trim())) throw new InvalidArgumentError(`${name} must be a whole number${unit}.`);
    const n = Number(v.trim());
    if (n < min) throw new InvalidArgumentError(`${name} must be at least ${min}.`);
    if (n > max) throw new InvalidArgumentError(`${name} must be at most ${max}.`);
    return n;
  };
}

/** Event names the audit trail records; a typo is caught before the request. */
const AUDIT_EVENTS: readonly string[] = AUDIT_EVENT_NAMES;

function auditEvent(v: string): string {
  if (!AUDIT_EVENTS.includes(v.trim())) throw new InvalidArgumentError(`unknown event ${JSON.stringify(v.slice(0, 60))} (known: ${AUDIT_EVENTS.join(', ')}).`);
  return v.trim();
}

function knownScope(v: string): string {
  if (!isKnownScope(v.trim())) throw new InvalidArgumentError(`unknown scope ${JSON.stringify(v.slice(0, 60))} (known: ${ALL_SCOPES.join(', ')}).`);
  return v.trim();
}

/** Options every token command takes: output format and where/how to reach the admin API. */
function withCommon(cmd: Command): Command {
  return cmd
    .option('--json', 'print the API response as JSON')
    .option('--profile <name>', 'profile in ~/.config/orcheo/cli.toml (default: $ORCHEO_PROFILE or "default")')
    .option('--api-url <url>', 'admin API base URL (default: $ORCHEO_API_URL, the profile\'s api_url, or http://127.0.0.1:8181)')
    .addOption(new Option('--service-token <token>', 'service token to authenticate with (prefer $ORCHEO_SERVICE_TOKEN: arguments are visible to other local users)'));
}

function write(text: string): void {
  process.stdout.write(text);
}

/**
 * Runs one API call and prints the result. Refusals become exit 1 with the server's message and
 * code (also as JSON on stdout under --json); an unreachable server is exit 1 with a clear message;
 * bad settings (URL, profile) are usage errors (exit 2) raised by resolveSettings.
 */
async function run<T>(opts: CommonOpts, call: (c: AdminApiClient) => Promise<T>, human: (r: T) => string): Promise<void> {
  const settings = resolveSettings(opts);
  const client = new AdminApiClient(settings);
  let result: T;
  try {
    result = await call(client);
  } catch (err) {
    if (err instanceof ApiRefusal) {
      if (opts.json) write(`${JSON.stringify({ message: err.message, code: err.code, status: err.status }, null, 2)}\n`);
      let hint = '';
      if (err.status === 401 && !settings.serviceToken) hint = `\nNo service token configured: set ORCHEO_SERVICE_TOKEN or service_token in ${settings.profilePath}.`;
      throw new CommandError(isErrorCode(err.code) ? err.code : 'cli.refused', `Error: ${err.message} (${err.code})${hint}`);
    }
    if (err instanceof ApiUnreachable) {
      if (opts.json) write(`${JSON.stringify({ message: err.message, code: 'cli.unreachable' }, null, 2)}\n`);
      throw new CommandError('cli.unreachable', `Error: ${err.message}`);
    }
    throw err;
  }
  write(opts.json ? `${JSON.stringify(result, null, 2)}\n` : human(result));
}

const seg = (id: string): string => {
  // `audit` is a reserved name (the audit trail lives at …/service-tokens/audit), never a token.
  if (id === 'audit') throw new UsageError('"audit" is reserved and is never a token id');
  return `/${encodeURIComponent(id)}`;
};

/** `token create|list|show|rotate|revoke|audit`, talking to the admin API. */
export function registerTokenCommands(program: Command): void {
  const token = program
    .command('token')
    .description('manage service tokens through the admin API (ORCHEO_API_URL, ORCHEO_SERVICE_TOKEN or ~/.config/orcheo/cli.toml)');

  withCommon(token.command('create'))
    .description('create a service token; its secret is shown once')
    .option('--id <id>', 'token identifier (default: generated)')
    .option('--scope <scope>', 'grant a scope (repeatable)', collect, [])
    .option('--workspace <id>', 'allow a workspace, or * for all (repeatable)', collect, [])
    .option('--expires-in <seconds>', 'lifetime in seconds (at least 60; default: no expiry)', wholeNumber('--expires-in', LIMITS.minExpiresIn, LIMITS.maxExpiresIn))
    .action(async (o: CommonOpts & { id?: string; scope: string[]; workspace: string[]; expiresIn?: number }) => {
      const body: Record<string, unknown> = { scopes: o.scope, workspaces: o.workspace };
      if (o.id !== undefined) body.id = o.id;
      if (o.expiresIn !== undefined) body.expires_in = o.expiresIn;
      await run(o, (c) => c.request<TokenJson>('POST', '', body), formatCreated);
    });

  withCommon(token.command('list'))
    .description('list service tokens with their status (Active, Expired, Revoked, Rotated)')
    .option('--status <status>', 'only tokens with this status (repeatable)', collect, [])
    .option('--scope <scope>', 'only tokens holding this scope', knownScope)
    .option('--workspace <id>', 'only tokens allowed in this workspace')
    .action(async (o: CommonOpts & { status: string[]; scope?: string; workspace?: string }) => {
      const q = new URLSearchParams();
      for (const s of o.status) q.append('status', s);
      if (o.scope) q.set('scope', o.scope);
      if (o.workspace) q.set('workspace', o.workspace);
      const qs = q.toString();
      await run(o, (c) => c.request<{ tokens: TokenJson[] }>('GET', qs ? `?${qs}` : ''), (r) => formatList(r.tokens));
    });

  withCommon(token.command('show'))
    .description('show one service token (never its secret)')
    .argument('<id>', 'token identifier')
    .action(async (id: string, o: CommonOpts) => {
      await run(o, (c) => c.request<TokenJson>('GET', seg(id)), formatToken);
    });

  withCommon(token.command('rotate'))
    .description('issue a new secret for a token; the old secret keeps working for the overlap only')
    .argument('<id>', 'token identifier')
    .option('--overlap <seconds>', 'seconds the old secret stays valid (0 ends it at once)', wholeNumber('--overlap', 0, LIMITS.maxOverlap), LIMITS.defaultOverlap)
    .option('--expires-in <seconds>', 'lifetime of the new secret (default: the old lifetime, or none)', wholeNumber('--expires-in', LIMITS.minExpiresIn, LIMITS.maxExpiresIn))
    .option('--scope <scope>', 'replace the scopes (repeatable; default: keep)', collect, [])
    .option('--workspace <id>', 'replace the workspaces (repeatable; default: keep)', collect, [])
    .action(async (id: string, o: CommonOpts & { overlap: number; expiresIn?: number; scope: string[]; workspace: string[] }) => {
      const body: Record<string, unknown> = { overlap: o.overlap };
      if (o.expiresIn !== undefined) body.expires_in = o.expiresIn;
      if (o.scope.length) body.scopes = o.scope;
      if (o.workspace.length) body.workspaces = o.workspace;
      await run(o, (c) => c.request<TokenJson>('POST', `${seg(id)}/rotate`, body), formatRotated);
    });

  withCommon(token.command('revoke'))
    .description('revoke a token at once (and its previous secret if still in overlap)')
    .argument('<id>', 'token identifier')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .action(async (id: string, o: CommonOpts & { reason?: string }) => {
      const body = o.reason === undefined ? {} : { reason: o.reason };
      await run(o, (c) => c.request<TokenJson>('DELETE', seg(id), body), formatRevoked);
    });

  withCommon(token.command('audit'))
    .description('show the audit trail (creations, rotations, revocations, aggregated failures and use)')
    .option('--id <id>', 'only events of this token (and its rotated predecessors)')
    .option('--event <name>', `only this event (${AUDIT_EVENTS.join(', ')})`, auditEvent)
    .option('--limit <n>', 'at most this many events, newest first (default 100, at most 1000)', wholeNumber('--limit', 1, 1000, ''))
    .action(async (o: CommonOpts & { id?: string; event?: string; limit?: number }) => {
      const q = new URLSearchParams();
      if (o.id) q.set('id', o.id);
      if (o.event) q.set('event', o.event);
      if (o.limit !== undefined) q.set('limit', String(o.limit));
      const qs = q.toString();
      await run(o, (c) => c.request<{ events: AuditJson[] }>('GET', `/audit${qs ? `?${qs}` : ''}`), (r) => formatAudit(r.events));
    });
}
