/**
 * Every non-deny error the service answers with or exits on has a stable string code. The admin
 * API answers `{message, code}` with HTTP_STATUS[code]; the CLI and `serve` exit with
 * EXIT_CODE[code]. Both tables are total over their unions (the compiler checks it), so no other
 * file decides a status or an exit code. The deny codes (`auth.*`) live in deny.ts.
 */

/** Codes the admin API answers with. */
export type ApiErrorCode =
  | 'request.unknown_field'
  | 'request.unknown_parameter'
  | 'request.invalid_status'
  | 'request.invalid_event'
  | 'request.invalid_limit'
  | 'request.invalid_before'
  | 'request.malformed_body'
  | 'request.body_too_large'
  | 'request.aborted'
  | 'http.bad_request'
  | 'http.not_found'
  | 'http.method_not_allowed'
  | 'http.internal'
  | 'token.invalid_id'
  | 'token.invalid_scope'
  | 'token.invalid_workspace'
  | 'token.invalid_expires_in'
  | 'token.invalid_overlap'
  | 'token.invalid_reason'
  | 'token.duplicate'
  | 'token.not_found'
  | 'token.not_active'
  | 'token.already_revoked'
  | 'token.privilege_escalation'
  | 'explain.unknown_field'
  | 'explain.invalid_method'
  | 'explain.invalid_path'
  | 'explain.invalid_headers'
  | 'explain.invalid_context'
  | 'explain.invalid_token'
  | 'explain.conflicting_token'
  | 'explain.invalid_ip'
  | 'store.unavailable';

/** Codes only a process reports (start-up, CLI): they never travel over HTTP. */
export type ProcessErrorCode =
  | 'config.invalid'
  | 'policy.invalid'
  | 'store.migration_failed'
  | 'cli.usage'
  | 'cli.unreachable'
  /** The server refused with a code this table does not hold (an `auth.*` deny, a newer server's). */
  | 'cli.refused'
  /** Anything else: a bug, or a failure with no more specific code (an unclean shutdown). */
  | 'internal';

export type ErrorCode = ApiErrorCode | ProcessErrorCode;

export const HTTP_STATUS: Readonly<Record<ApiErrorCode, number>> = Object.freeze({
  'request.unknown_field': 400,
  'request.unknown_parameter': 400,
  'request.invalid_status': 400,
  'request.invalid_event': 400,
  'request.invalid_limit': 400,
  'request.invalid_before': 400,
  'request.malformed_body': 400,
  'request.body_too_large': 413,
  'request.aborted': 400,
  'http.bad_request': 400,
  'http.not_found': 404,
  'http.method_not_allowed': 405,
  'http.internal': 500,
  'token.invalid_id': 400,
  'token.invalid_scope': 400,
  'token.invalid_workspace': 400,
  'token.invalid_expires_in': 400,
  'token.invalid_overlap': 400,
  'token.invalid_reason': 400,
  'token.duplicate': 409,
  'token.not_found': 404,
  'token.not_active': 409,
  'token.already_revoked': 409,
  'token.privilege_escalation': 403,
  'explain.unknown_field': 400,
  'explain.invalid_method': 400,
  'explain.invalid_path': 400,
  'explain.invalid_headers': 400,
  'explain.invalid_context': 400,
  'explain.invalid_token': 400,
  'explain.conflicting_token': 400,
  'explain.invalid_ip': 400,
  'store.unavailable': 503,
});

/**
 * Process exit codes (README "Exit codes"): 0 success; 1 refused or failed; 2 usage, configuration
 * or policy error; 3 the token store is unreachable. A supervisor can retry 3 and not 2.
 */
export const EXIT = Object.freeze({ ok: 0, failed: 1, usage: 2, storeUnavailable: 3 });

const FAILED = EXIT.failed;

export const EXIT_CODE: Readonly<Record<ErrorCode, number>> = Object.freeze({
  'request.unknown_field': FAILED,
  'request.unknown_parameter': FAILED,
  'request.invalid_status': FAILED,
  'request.invalid_event': FAILED,
  'request.invalid_limit': FAILED,
  'request.invalid_before': FAILED,
  'request.malformed_body': FAILED,
  'request.body_too_large': FAILED,
  'request.aborted': FAILED,
  'http.bad_request': FAILED,
  'http.not_found': FAILED,
  'http.method_not_allowed': FAILED,
  'http.internal': FAILED,
  'token.invalid_id': FAILED,
  'token.invalid_scope': FAILED,
  'token.invalid_workspace': FAILED,
  'token.invalid_expires_in': FAILED,
  'token.invalid_overlap': FAILED,
  'token.invalid_reason': FAILED,
  'token.duplicate': FAILED,
  'token.not_found': FAILED,
  'token.not_active': FAILED,
  'token.already_revoked': FAILED,
  'token.privilege_escalation': FAILED,
  'explain.unknown_field': FAILED,
  'explain.invalid_method': FAILED,
  'explain.invalid_path': FAILED,
  'explain.invalid_headers': FAILED,
  'explain.invalid_context': FAILED,
  'explain.invalid_token': FAILED,
  'explain.conflicting_token': FAILED,
  'explain.invalid_ip': FAILED,
  'store.unavailable': EXIT.storeUnavailable,
  'config.invalid': EXIT.usage,
  'policy.invalid': EXIT.usage,
  'store.migration_failed': FAILED,
  'cli.usage': EXIT.usage,
  'cli.unreachable': FAILED,
  'cli.refused': FAILED,
  internal: FAILED,
});

export function isApiErrorCode(code: unknown): code is ApiErrorCode {
  return typeof code === 'string' && Object.hasOwn(HTTP_STATUS, code);
}

export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(EXIT_CODE, code);
}

/** An error with a stable code; its message is for people and never holds a secret. */
export class CodedError<C extends ErrorCode = ErrorCode> extends Error {
  constructor(
    readonly code: C,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An admin API refusal: HTTP_STATUS[code] plus the contract's JSON body `{message, code}`. */
export class ApiError extends CodedError<ApiErrorCode> {
  constructor(
    code: ApiErrorCode,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(code, message);
  }

  get status(): number {
    return HTTP_STATUS[this.code];
  }
}

/**
 * The exit code for whatever a command threw: the table's, for any error carrying a known code
 * (ConfigError and PolicyError carry theirs), otherwise 1.
 */
export function exitCodeOf(err: unknown): number {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return isErrorCode(code) ? EXIT_CODE[code] : FAILED;
}
