/** The API/CLI error tables: every code has a status and an exit code, and the code sites agree. */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ApiError, CodedError, EXIT, EXIT_CODE, exitCodeOf, HTTP_STATUS, isApiErrorCode } from '../src/errors/api';
import { DENY_CODES } from '../src/errors/deny';
import { ConfigError } from '../src/config/load';
import { PolicyError } from '../src/authz/policy-file';
import { StoreUnavailableError } from '../src/store/db';
import { DuplicateTokenError, TokenNotFoundError, TokenStateError } from '../src/store/tokens';

const SRC = join(__dirname, '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : p.endsWith('.ts') ? [p] : [];
  });
}

test('every API code has an HTTP status in 400..599 and an exit code; every exit code is a documented one', () => {
  const documented = new Set<number>(Object.values(EXIT));
  for (const [code, status] of Object.entries(HTTP_STATUS)) {
    assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code} → ${status}`);
    assert.ok(code in EXIT_CODE, `${code} has no exit code`);
  }
  for (const [code, exit] of Object.entries(EXIT_CODE)) {
    assert.ok(documented.has(exit) && exit !== EXIT.ok, `${code} → exit ${exit}`);
    assert.match(code, /^([a-z]+\.[a-z_]+|internal)$/, code);
  }
  assert.equal(HTTP_STATUS['store.unavailable'], 503);
  assert.equal(EXIT_CODE['store.unavailable'], EXIT.storeUnavailable);
  assert.equal(EXIT_CODE['config.invalid'], EXIT.usage);
  assert.equal(EXIT_CODE['policy.invalid'], EXIT.usage);
  // The deny codes are the other leaf's: no code is in both.
  for (const code of Object.keys(DENY_CODES)) assert.ok(!(code in EXIT_CODE), code);
});

test('every code the source writes as a literal is in the tables (no loose strings)', () => {
  const known = new Set([...Object.keys(EXIT_CODE), ...Object.keys(DENY_CODES)]);
  // Names that look like codes but are something else: audit events and a config file.
  const notCodes = new Set(['token.created', 'token.rotated', 'token.revoked', 'token.used', 'cli.toml', 'config.warning']);
  const seen = new Set<string>();
  for (const file of sources(SRC)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/'((?:token|request|http|store|config|policy|cli)\.[a-z_]+)'/g)) seen.add(m[1]!);
  }
  const loose = [...seen].filter((c) => !known.has(c) && !notCodes.has(c));
  assert.deepEqual(loose, []);
  assert.ok(seen.has('token.invalid_expires_in') && seen.has('store.unavailable'), 'the scan sees the sources');
  // The template that built codes from field names is gone.
  for (const file of sources(SRC)) assert.ok(!readFileSync(file, 'utf8').includes('`token.invalid_${'), file);
});

test('error classes carry their code; status and exit code come from the tables', () => {
  const cases: Array<[Error, string, number | undefined, number]> = [
    [new DuplicateTokenError('a'), 'token.duplicate', 409, 1],
    [new TokenNotFoundError('a'), 'token.not_found', 404, 1],
    [new TokenStateError('token.already_revoked', 'x'), 'token.already_revoked', 409, 1],
    [new ApiError('http.method_not_allowed', 'x', { allow: 'GET' }), 'http.method_not_allowed', 405, 1],
    [new StoreUnavailableError('down'), 'store.unavailable', undefined, 3],
    [new ConfigError(['bad']), 'config.invalid', undefined, 2],
    [new PolicyError('/p.yaml', ['bad']), 'policy.invalid', undefined, 2],
    [new CodedError('store.migration_failed', 'x'), 'store.migration_failed', undefined, 1],
  ];
  for (const [err, code, status, exit] of cases) {
    assert.equal((err as unknown as { code: string }).code, code);
    if (status !== undefined) assert.equal((err as ApiError).status, status, code);
    assert.equal(exitCodeOf(err), exit, code);
  }
  assert.equal(new TokenNotFoundError('a').name, 'TokenNotFoundError');
  assert.equal(exitCodeOf(new TypeError('bug')), EXIT.failed);
  assert.equal(exitCodeOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), EXIT.failed, 'a driver code is not ours');
  assert.equal(exitCodeOf(undefined), EXIT.failed);
  assert.ok(isApiErrorCode('token.not_found'));
  assert.ok(!isApiErrorCode('config.invalid'), 'process-only codes never travel over HTTP');
  assert.ok(!isApiErrorCode('toString'));
});
