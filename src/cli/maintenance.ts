import { BUILTIN_POLICY } from '../authz/builtin';
import { loadPolicyFile, PolicyError } from '../authz/policy-file';
import { existsSync } from 'node:fs';
import { ConfigError, loadConfig } from '../config/load';
import type { Config } from '../config/types';
import { configWarnings, rateLimitSummary } from '../config/warnings';
import { createLogger } from '../log';
import { migrate } from '../store/migrations';
import { openDb } from '../store/open';
import { CommandError } from './errors';

/** `orcheo-authz migrate`: applies pending migrations and prints the schema version. */
export async function migrateCommand(): Promise<void> {
  const cfg = loadConfig();
  const db = await openDb(cfg, createLogger(cfg.log.level));
  try {
    const r = await migrate(db);
    process.stdout.write(r.applied.length ? `Applied migrations ${r.applied.join(', ')}; schema at version ${r.current}\n` : `Schema up to date (version ${r.current})\n`);
  } finally {
    await db.close();
  }
}

/** `orcheo-authz check-config`: every configuration and policy problem at once (exit 2); warnings alone exit 0. */
export function checkConfigCommand(): void {
  const problems: string[] = [];
  let cfg: Config | undefined;
  let policyFile: string | undefined;
  try {
    cfg = loadConfig();
    policyFile = cfg.policyFile;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    policyFile = process.env.ORCHEO_AUTH_POLICY_FILE?.trim() || undefined;
  }
  let rules = BUILTIN_POLICY.rules.length;
  // A missing file is already one problem from loadConfig; reading it again would report it twice.
  if (policyFile && existsSync(policyFile)) {
    try {
      rules = loadPolicyFile(policyFile).rules.length;
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      problems.push(...err.problems.map((p) => `ORCHEO_AUTH_POLICY_FILE (${policyFile}): ${p}`));
    }
  }
  const warnings = cfg ? configWarnings(cfg, process.env) : [];
  if (warnings.length > 0) process.stderr.write(`${warnings.length} warning${warnings.length > 1 ? 's' : ''}:\n  - ${warnings.join('\n  - ')}\n`);
  if (problems.length > 0) {
    throw new CommandError('config.invalid', `${problems.length} configuration problem${problems.length > 1 ? 's' : ''}:\n  - ${problems.join('\n  - ')}`);
  }
  const policy = `${policyFile ? `policy ${policyFile}` : 'built-in policy'}, ${rules} rule${rules === 1 ? '' : 's'}`;
  process.stdout.write(`Configuration OK (${policy}; ${rateLimitSummary(cfg!)})\n`);
}
