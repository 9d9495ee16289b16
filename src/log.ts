import pino, { type Logger } from 'pino';

/**
 * The one redaction list. Code never logs a token or secret on purpose; this catches the accidents
 * (a header map, a config object, an error carrying a request).
 */
export const REDACT_PATHS = [
  'token',
  'secret',
  'password',
  'authorization',
  '*.token',
  '*.secret',
  '*.password',
  '*.authorization',
  '*.headers.authorization',
  '*.headers["sec-websocket-protocol"]',
  '*.databaseUrl',
  '*.redisUrl',
  'service_token',
  '*.service_token',
];

/** How long a buffered log line may wait before it is written. */
export const LOG_FLUSH_MS = 1000;

/**
 * JSON lines on stderr. Lines are buffered up to 4 KiB and flushed at least every second (and at
 * shutdown): a write per line cost a syscall per denied request, a third of a deny's price under load.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  let dest = destination;
  if (!dest) {
    const boom = pino.destination({ dest: 2, sync: false, minLength: 4096 });
    setInterval(() => boom.flush(), LOG_FLUSH_MS).unref();
    // A fatal exit must not lose the lines explaining it.
    process.once('exit', () => {
      try {
        boom.flushSync();
      } catch {
        // nothing left to do at exit
      }
    });
    dest = boom;
  }
  return pino(
    {
      name: 'orcheo-authz',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    dest,
  );
}
