import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { baseEnv, MAIN_JS, tempHome } from './helpers/spawn';

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const home = tempHome();
  try {
    // The API URL points at a closed port: every case here must be refused before any request.
    return spawnSync(process.execPath, [MAIN_JS, ...args], { env: baseEnv(home.dir, { ORCHEO_API_URL: 'http://127.0.0.1:1' }), encoding: 'utf8' });
  } finally {
    home.remove();
  }
}

test('--version prints the package version', () => {
  const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
  const r = cli(['--version']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), version);
});

test('usage errors print one line and a --help hint, not the whole help', () => {
  const cases: Array<[string[], RegExp]> = [
    [['token', 'audit', '--limit', 'abc'], /--limit must be a whole number\./],
    [['token', 'audit', '--limit', '5000'], /--limit must be at most 1000/],
    [['token', 'audit', '--limit', '0'], /--limit must be at least 1/],
    [['token', 'audit', '--event', 'token.create'], /unknown event "token.create" \(known: token.created, /],
    [['token', 'list', '--scope', 'workflow:read'], /unknown scope "workflow:read" \(known: workflows:read, /],
    [['token', 'show'], /missing required argument 'id'/],
  ];
  for (const [args, re] of cases) {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, re);
    assert.match(r.stderr, /run with --help for usage/);
    assert.ok(!r.stderr.includes('Options:'), `${args.join(' ')} printed the whole help`);
    assert.ok(!r.stderr.includes('Cannot reach'), `${args.join(' ')} sent a request`);
    assert.ok(r.stderr.trim().split('\n').length <= 2, r.stderr);
  }
});

test('list and show agree on "no workspaces" and say it is denied; list shows seconds within the hour', async () => {
  const { formatList, formatToken } = await import('../src/cli/format');
  const now = Date.parse('2026-01-01T12:00:00Z');
  const t = { id: 'ci', status: 'Active' as const, rotated_from: null, scopes: ['workflows:read'], workspaces: [], issued_at: '2025-12-01T08:00:00Z', expires_at: '2026-01-01T12:30:15Z', revoked_at: null, revocation_reason: null, rotated_to: null, last_used_at: null, use_count: 0, created_by: null };
  const list = formatList([t], now);
  assert.match(list, /^ci\s+workflows:read\s+none\s+2025-12-01 08:00 UTC\s+2026-01-01 12:30:15 UTC\s+Active$/m);
  assert.match(list, /Workspaces "none": denied on workspace routes/);
  assert.match(formatToken(t), /^Workspaces:\s+none \(denied on workspace routes\)$/m);
  assert.ok(!formatList([{ ...t, workspaces: ['ws-1'] }], now).includes('denied'));
});

test('a token command loads no server-side package (each CLI start stays cheap)', () => {
  const home = tempHome();
  try {
    // helpers/loaded-packages prints what the process loaded when it exits.
    const r = spawnSync(process.execPath, ['--require', join(__dirname, 'helpers', 'loaded-packages.js'), MAIN_JS, 'token', 'list'], {
      env: baseEnv(home.dir, { ORCHEO_API_URL: 'http://127.0.0.1:1' }),
      encoding: 'utf8',
    });
    assert.equal(r.status, 1, 'refused: nothing listens on port 1');
    const line = /^LOADED-PACKAGES (.*)$/m.exec(r.stderr);
    assert.ok(line, r.stderr);
    const packages = JSON.parse(line[1]!) as string[];
    assert.ok(packages.includes('commander'), `the hook sees the CLI's own packages: ${packages.join(', ')}`);
    for (const heavy of ['ioredis', 'pg', '@electric-sql/pglite', '@grpc/grpc-js', 'prom-client', 'pino', 'jose', 'yaml', 'protobufjs']) assert.ok(!packages.includes(heavy), `token list loaded ${heavy}`);
  } finally {
    home.remove();
  }
});
