import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { GROUPS, TEST_DIR } from './groups/plan';

const SRC_TEST_DIR = join(__dirname, '..', '..', 'test');

test('every test file is in exactly one group of test/groups/plan.ts, and every group has its entry file', () => {
  const files = readdirSync(SRC_TEST_DIR).filter((f) => f.endsWith('.test.ts')).map((f) => f.replace(/\.test\.ts$/, '')).sort();
  const listed = Object.values(GROUPS).flat();
  const twice = listed.filter((f, i) => listed.indexOf(f) !== i);
  assert.deepEqual(twice, [], 'in two groups');
  assert.deepEqual(files.filter((f) => !listed.includes(f)), [], 'test files in no group: add them to test/groups/plan.ts, or npm test never runs them');
  assert.deepEqual(listed.filter((f) => !files.includes(f)), [], 'listed in a group but no such test file');
  const entries = readdirSync(join(SRC_TEST_DIR, 'groups')).filter((f) => f.endsWith('.test.ts')).map((f) => f.replace(/\.test\.ts$/, '')).sort();
  assert.deepEqual(entries, Object.keys(GROUPS).sort(), 'one test/groups/<name>.test.ts per group');
  for (const f of listed) assert.ok(existsSync(join(TEST_DIR, `${f}.test.js`)), `${f}.test.js not built`);
});

test('npm test runs the groups', () => {
  const pkg = JSON.parse(readFileSync(join(SRC_TEST_DIR, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  assert.match(pkg.scripts['test']!, /node --test .*dist\/test\/groups\/\*\.test\.js$/);
});
