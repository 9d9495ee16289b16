/** `orcheo token list` output fits 100 columns (operator issue, CLI), without losing which token is which. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatList, LIST_WIDTH, type TokenJson } from '../src/cli/format';

const ALL = ['workflows:read', 'workflows:write', 'workflows:execute', 'vault:read', 'vault:write', 'admin:tokens:read', 'admin:tokens:write'];
const token = (id: string, scopes: string[], workspaces: string[]): TokenJson => ({
  id, status: 'Active', scopes, workspaces, issued_at: '2026-12-01T10:00:00.000Z', expires_at: null, revoked_at: null,
  revocation_reason: null, rotated_to: null, rotated_from: null, last_used_at: null, use_count: 0, created_by: null,
});

test('a short list keeps every column; a wide one drops Issued, then shortens lists with +N, within 100 columns', () => {
  const narrow = formatList([token('ci', ['workflows:read'], ['ws-1'])], Date.parse('2026-12-01T12:00:00Z'));
  assert.match(narrow.split('\n')[0]!, /^ID\s+Scopes\s+Workspaces\s+Issued\s+Expires\s+Status$/);

  const wide = formatList([token('admin-token-for-production', ALL, ['ws-production', 'ws-staging', 'ws-dev', 'ws-eu-1']), token('ci', ['workflows:read'], [])]);
  const lines = wide.trimEnd().split('\n');
  for (const l of lines) assert.ok(l.length <= LIST_WIDTH, `${l.length} columns: ${l}`);
  assert.doesNotMatch(lines[0]!, /Issued/);
  assert.match(wide, /admin-token-for-production/);
  const row = lines.find((l) => l.startsWith('admin-token-for-production'))!;
  const shown = (row.match(/\+(\d+)/g) ?? []).length;
  assert.ok(shown >= 1, `a shortened list says how many are left out: ${row}`);
  assert.match(row, /workflows:read/);
});
