import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { UsageError } from './errors';

export const DEFAULT_API_URL = 'http://127.0.0.1:8181';

export interface SettingFlags {
  readonly apiUrl?: string | undefined;
  readonly serviceToken?: string | undefined;
  readonly profile?: string | undefined;
}

export type SettingSource = 'flag' | 'env' | 'profile' | 'default';

export interface CliSettings {
  readonly apiUrl: string;
  /** Non-enumerable: never printed with the settings. */
  readonly serviceToken: string | undefined;
  readonly profile: string;
  readonly profilePath: string;
  readonly sources: { readonly apiUrl: SettingSource; readonly serviceToken: SettingSource | 'none' };
}

/** `$XDG_CONFIG_HOME/orcheo/cli.toml`, else `~/.config/orcheo/cli.toml` (the guide's path). */
export function profilePath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME?.trim() || join(homedir(), '.config');
  return join(base, 'orcheo', 'cli.toml');
}

interface Profile {
  api_url?: string;
  service_token?: string;
}

/** Reads one profile: `[name]` (the guide's form) or `[profiles.name]`. */
export function loadProfile(path: string, name: string, required: boolean): Profile | undefined {
  if (!existsSync(path)) {
    if (required) throw new UsageError(`Profile ${JSON.stringify(name)} not found: ${path} does not exist`);
    return undefined;
  }
  let doc: Record<string, unknown>;
  try {
    doc = parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    // Never echo the parser's excerpt: the file holds service tokens.
    const where = err instanceof TomlError ? ` at line ${err.line}, column ${err.column}` : '';
    throw new UsageError(`Invalid TOML in ${path}${where}`);
  }
  const profiles = doc.profiles as Record<string, unknown> | undefined;
  const section = (doc[name] ?? (profiles && typeof profiles === 'object' ? profiles[name] : undefined)) as Record<string, unknown> | undefined;
  if (section === undefined || typeof section !== 'object' || section === null || Array.isArray(section)) {
    if (required) throw new UsageError(`Profile ${JSON.stringify(name)} not found in ${path}`);
    return undefined;
  }
  for (const key of ['api_url', 'service_token'] as const) {
    if (section[key] !== undefined && typeof section[key] !== 'string') throw new UsageError(`${path}: [${name}] ${key} must be a string`);
  }
  return { api_url: section.api_url as string | undefined, service_token: section.service_token as string | undefined };
}

function checkUrl(value: string, source: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UsageError(`Invalid API URL from ${source}: ${JSON.stringify(value.slice(0, 200))}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`Invalid API URL from ${source}: expected http:// or https://`);
  if (u.username || u.password) throw new UsageError(`Invalid API URL from ${source}: credentials in the URL are not supported`);
  return value.replace(/\/+$/, '');
}

/** Precedence for each setting: flag > environment > profile > default. */
export function resolveSettings(flags: SettingFlags, env: NodeJS.ProcessEnv = process.env): CliSettings {
  const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const flagProfile = nonEmpty(flags.profile);
  const envProfile = nonEmpty(env.ORCHEO_PROFILE);
  const name = flagProfile ?? envProfile ?? 'default';
  const path = profilePath(env);
  const profile = loadProfile(path, name, flagProfile !== undefined || envProfile !== undefined);

  let apiUrl: string;
  let apiSource: SettingSource;
  if (nonEmpty(flags.apiUrl)) [apiUrl, apiSource] = [checkUrl(nonEmpty(flags.apiUrl)!, '--api-url'), 'flag'];
  else if (nonEmpty(env.ORCHEO_API_URL)) [apiUrl, apiSource] = [checkUrl(nonEmpty(env.ORCHEO_API_URL)!, 'ORCHEO_API_URL'), 'env'];
  else if (nonEmpty(profile?.api_url)) [apiUrl, apiSource] = [checkUrl(nonEmpty(profile?.api_url)!, `${path} [${name}] api_url`), 'profile'];
  else [apiUrl, apiSource] = [DEFAULT_API_URL, 'default'];

  let token: string | undefined;
  let tokenSource: SettingSource | 'none' = 'none';
  if (nonEmpty(flags.serviceToken)) [token, tokenSource] = [nonEmpty(flags.serviceToken), 'flag'];
  else if (nonEmpty(env.ORCHEO_SERVICE_TOKEN)) [token, tokenSource] = [nonEmpty(env.ORCHEO_SERVICE_TOKEN), 'env'];
  else if (nonEmpty(profile?.service_token)) [token, tokenSource] = [nonEmpty(profile?.service_token), 'profile'];

  const settings = { apiUrl, profile: name, profilePath: path, sources: { apiUrl: apiSource, serviceToken: tokenSource } } as CliSettings;
  Object.defineProperty(settings, 'serviceToken', { value: token, enumerable: false });
  return settings;
}
