#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError } from './config/load';
import { CommandError, UsageError } from './cli/errors';
import { registerExplainCommand } from './cli/explain';
import { registerTokenCommands } from './cli/token';
import { registerAssertionKeyCommands } from './cli/assertion-key';
import { packageVersion } from './version';

/**
 * Entry point for both bins (`orcheo-authz` and `orcheo`). Commands throw; this is the one place
 * that maps errors to exit codes: 0 ok, 1 refused/failed, 2 usage or configuration error.
 */
function program(): Command {
  const cmd = new Command(process.argv[1]?.endsWith('orcheo') ? 'orcheo' : 'orcheo-authz')
    .description('Envoy ext_authz sidecar for Orcheo authentication')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    // A usage error prints its one line and a pointer to --help, not the whole help.
    .showHelpAfterError(`(run with --help for usage)`);
  // Server modules load only for the commands that need them, so `orcheo token …` starts fast.
  cmd.command('serve').description('start the gRPC Check service and the HTTP endpoints').action(async () => (await import('./cli/serve')).serve());
  cmd.command('migrate').description('apply database migrations').action(async () => (await import('./cli/maintenance')).migrateCommand());
  cmd.command('check-config').description('validate the environment and the policy file, printing every problem').action(async () => (await import('./cli/maintenance')).checkConfigCommand());
  registerTokenCommands(cmd);
  registerAssertionKeyCommands(cmd);
  registerExplainCommand(cmd);
  return cmd;
}

export async function runCli(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? 0 : 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    if (err instanceof UsageError || err instanceof CommandError) {
      process.stderr.write(`${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(`error: ${(err as Error)?.message ?? String(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  runCli(process.argv).then((code) => {
    // `serve` keeps the process alive through its servers; everything else exits here.
    if (code !== 0 || process.argv[2] !== 'serve') process.exit(code);
  });
}
