/** Errors a command throws; `runCli` is the one place that maps them to exit codes. */
export class UsageError extends Error {
  readonly exitCode = 2;
}

export class CommandError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
  }
}
