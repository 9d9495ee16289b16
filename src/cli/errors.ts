import { CodedError, type ErrorCode } from '../errors/api';

/**
 * Errors a command throws; `runCli` is the one place that maps them to exit codes, through
 * EXIT_CODE (errors/api.ts).
 */
export class UsageError extends CodedError<'cli.usage'> {
  constructor(message: string) {
    super('cli.usage', message);
  }
}

/** A command failed for a reason with a code (the server's refusal, configuration problems…). */
export class CommandError extends CodedError {
  constructor(code: ErrorCode, message: string) {
    super(code, message);
  }
}
