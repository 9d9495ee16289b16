import { BUILTIN_POLICY } from '../authz/builtin';
import { loadPolicyFile, PolicyError } from '../authz/policy-file';
import { ConfigError, loadConfig } from '../config/load';
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

/** `orcheo-authz check-config`: every configuration and policy problem at once; exit 2 on any. */
export function checkConfigCommand(): void {
  const problems: string[] = [];
  let policyFile: string | undefined;
  try {
    policyFile = loadConfig().policyFile;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
    policyFile = process.env.ORCHEO_AUTH_POLICY_FILE?.trim() || undefined;
  }
  let rules = BUILTIN_POLICY.rules.length;
  if (policyFile) {
    try {
      rules = loadPolicyFile(policyFile).rules.length;
    } catch (err) {
      if (!(err instanceof PolicyError)) throw err;
      problems.push(...err.problems.map((p) => `ORCHEO_AUTH_POLICY_FILE (${policyFile}): ${p}`));
    }
  }
  if (problems.length > 0) {
    throw new CommandError(`${problems.length} configuration problem${problems.length > 1 ? 's' : ''}:\n  - ${problems.join('\n  - ')}`, 2);
  }
  process.stdout.write(`Configuration OK (${policyFile ? `policy ${policyFile}` : 'built-in policy'}, ${rules} rules)\n`);
}
