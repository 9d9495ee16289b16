import { isErrorCode } from '../errors/api';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { Explanation } from '../pipeline/explain';
import { AdminApiClient, ApiRefusal, ApiUnreachable } from './api-client';
import { CommandError, UsageError } from './errors';
import { formatExplanation } from './explain-format';
import { resolveSettings, type SettingFlags } from './profile';

interface ExplainOpts extends SettingFlags {
  readonly method: string;
  readonly path: string;
  readonly header: [string, string][];
  readonly tokenEnv?: string;
  readonly ip?: string;
  readonly context: [string, string][];
  readonly json?: boolean;
}

function header(v: string, prev: [string, string][]): [string, string][] {
  const i = v.indexOf(':');
  const name = i < 0 ? '' : v.slice(0, i).trim();
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) throw new InvalidArgumentError(`expected 'name: value', e.g. --header 'x-request-id: abc'.`);
  return [...prev, [name, v.slice(i + 1).trim()]];
}

function context(v: string, prev: [string, string][]): [string, string][] {
  const i = v.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`expected key=value, e.g. --context required_scopes=vault:read.`);
  return [...prev, [v.slice(0, i).trim(), v.slice(i + 1)]];
}

/**
 * The request body. The token comes from an environment variable, so it stays out of shell history and
 * `ps`; it travels in the body (never in a URL) and is never printed.
 */
export function explainBody(o: ExplainOpts, env: NodeJS.ProcessEnv = process.env): Record<string, unknown> {
  const headers: Record<string, string> = {};
  for (const [k, v] of o.header) {
    const key = Object.keys(headers).find((h) => h.toLowerCase() === k.toLowerCase()) ?? k;
    headers[key] = key in headers ? `${headers[key]},${v}` : v;
  }
  const body: Record<string, unknown> = { method: o.method, path: o.path, headers };
  if (o.tokenEnv !== undefined) {
    const token = env[o.tokenEnv]?.trim();
    if (!token) throw new UsageError(`--token-env ${o.tokenEnv}: the variable is not set or empty`);
    body.token = token;
  }
  if (o.ip !== undefined) body.ip = o.ip;
  if (o.context.length) body.context = Object.fromEntries(o.context);
  return body;
}

async function explain(o: ExplainOpts): Promise<void> {
  const settings = resolveSettings(o);
  const body = explainBody(o);
  let result: Explanation;
  try {
    result = await new AdminApiClient(settings).call<Explanation>('POST', '/api/admin/explain', body);
  } catch (err) {
    if (err instanceof ApiRefusal) {
      if (o.json) process.stdout.write(`${JSON.stringify({ message: err.message, code: err.code, status: err.status }, null, 2)}\n`);
      const hint = err.status === 401 && !settings.serviceToken ? `\nNo service token configured: set ORCHEO_SERVICE_TOKEN or service_token in ${settings.profilePath}.` : '';
      throw new CommandError(isErrorCode(err.code) ? err.code : 'cli.refused', `Error: ${err.message} (${err.code})${hint}`);
    }
    if (err instanceof ApiUnreachable) throw new CommandError('cli.unreachable', `Error: ${err.message}`);
    throw err;
  }
  process.stdout.write(o.json ? `${JSON.stringify(result, null, 2)}\n` : formatExplanation(result));
}

/** `explain`: how the running instance would decide one request, phase by phase, counting nothing. */
export function registerExplainCommand(program: Command): void {
  program
    .command('explain')
    .description('show how the running instance would decide a request (credential, identity, rule, limits, decision) without counting it')
    .requiredOption('--method <method>', 'HTTP method of the request, e.g. GET')
    .requiredOption('--path <path>', 'path (and query) of the request, e.g. /api/workspaces/ws-a/workflows')
    .option('--header <name: value>', 'a request header (repeatable)', header, [])
    .option('--token-env <VAR>', 'environment variable holding the bearer token to explain (sent as Authorization: Bearer)')
    .option('--ip <address>', 'client address of the request (default: this CLI\'s address as the server sees it)')
    .option('--context <key=value>', 'an Envoy context extension, e.g. enforce=false (repeatable)', context, [])
    .option('--json', 'print the explanation as JSON (stable field names)')
    .option('--profile <name>', 'profile in ~/.config/orcheo/cli.toml (default: $ORCHEO_PROFILE or "default")')
    .option('--api-url <url>', 'admin API base URL (default: $ORCHEO_API_URL, the profile\'s api_url, or http://127.0.0.1:8181)')
    .addOption(new Option('--service-token <token>', 'service token to authenticate with (prefer $ORCHEO_SERVICE_TOKEN)'))
    .action((o: ExplainOpts) => explain(o));
}
