#!/usr/bin/env node
import { Command, CommanderError } from 'commander';
import { ConfigError } from './config/load';
import { CommandError, UsageError } from './cli/errors';
import { registerExplainCommand } from './cli/explain';
import { EXIT, exitCodeOf } from './errors/api';
import { registerTokenCommands } from './cli/token';
import { registerAssertionKeyCommands } from './cli/assertion-key';
import { packageVersion } from './version';

/**
 * Entry point for both bins (`orcheo-authz` and `orcheo`). Commands throw; this is the one place
 * that turns errors into exit codes, through EXIT_CODE: 0 ok, 1 refused/failed, 2 usage,
 * configuration or policy error, 3 token store unreachable.
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
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    // Errors meant for the operator print as they are; anything else is marked as an error.
    const known = err instanceof UsageError || err instanceof CommandError || err instanceof ConfigError;
    process.stderr.write(known ? `${(err as Error).message}\n` : `error: ${(err as Error)?.message ?? String(err)}\n`);
    return exitCodeOf(err);
  }
}

if (require.main === module) {
  // `serve` resolves only once it has stopped, so every command exits here, with its code.
  void runCli(process.argv).then((code) => process.exit(code));
}
