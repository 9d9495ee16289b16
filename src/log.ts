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

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: 'orcheo-authz',
      level,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination ?? pino.destination({ dest: 2, sync: false }),
  );
}
