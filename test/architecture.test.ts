/**
 * Layering, read from the sources: every import/export-from/require/import() specifier of
 * src/**\/*.ts (TypeScript's own pre-processor, so type-only imports count too: they are a
 * dependency of the design even when erased from the output). The checker is a pure function of
 * the file texts, so the second half of this file proves it can fail on synthetic violations.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import * as ts from 'typescript';

/** The repository's src/, seen from dist/test. */
const SRC = resolve(__dirname, '..', '..', 'src');
const MAX_LINES = 300;

/** Known violations: none. An entry here that no longer matches anything fails the test. */
export const KNOWN_VIOLATIONS: readonly string[] = [];

interface Rule {
  /** Top-level directory under src/ the rule applies to. */
  readonly layer: string;
  readonly why: string;
  /** True when the import (src-relative path without extension, or a package name) is forbidden. */
  forbids(target: string): boolean;
}

const under = (dir: string) => (t: string) => t === dir || t.startsWith(`${dir}/`);
const grpcPackage = (t: string) => t.startsWith('@grpc/');

export const RULES: readonly Rule[] = [
  ...['pipeline', 'authn', 'authz'].map((layer) => ({ layer, why: 'wire-neutral: nothing of gRPC', forbids: (t: string) => under('grpc')(t) || grpcPackage(t) })),
  { layer: 'store', why: 'the store knows no pipeline or authenticator', forbids: (t) => under('pipeline')(t) || under('authn')(t) },
  { layer: 'admin', why: 'the admin API gets narrow dependencies, not the App', forbids: (t) => t === 'app' },
];

/** A relative specifier resolved to a src-relative posix path without extension; a package name as is. */
function target(file: string, spec: string): string {
  if (!spec.startsWith('.')) return spec;
  return posix.normalize(posix.join(posix.dirname(file), spec)).replace(/\.(js|ts)$/, '').replace(/\/index$/, '');
}

/** Violations in `files` (src-relative posix path → text), as "<file> imports <target>" / "<file> has N lines". */
export function layerViolations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of files) {
    const lines = text.split('\n').length - (text.endsWith('\n') ? 1 : 0);
    if (lines > MAX_LINES) out.push(`${file} has ${lines} lines (max ${MAX_LINES})`);
    const layer = file.split('/')[0]!;
    const rules = RULES.filter((r) => r.layer === layer);
    if (rules.length === 0) continue;
    for (const imp of ts.preProcessFile(text, true, true).importedFiles) {
      const t = target(file, imp.fileName);
      for (const r of rules) if (r.forbids(t)) out.push(`${file} imports ${t}`);
    }
  }
  return out.sort();
}

function readSources(dir: string, out = new Map<string, string>()): Map<string, string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) readSources(p, out);
    else if (e.name.endsWith('.ts')) out.set(relative(SRC, p).split(/[\\/]/).join('/'), readFileSync(p, 'utf8'));
  }
  return out;
}

describe('layering of src/', () => {
  const sources = readSources(SRC);

  test('the sources were found (a wrong path would check nothing)', () => {
    assert.ok(sources.size > 50, `only ${sources.size} files under ${SRC}`);
    for (const layer of ['pipeline', 'authn', 'authz', 'store', 'admin', 'grpc']) assert.ok([...sources.keys()].some((f) => f.startsWith(`${layer}/`)), layer);
    assert.ok(sources.has('app.ts'));
  });

  test('pipeline/authn/authz import nothing of gRPC; store nothing of pipeline/authn; admin not app.ts; no file over 300 lines', () => {
    const found = layerViolations(sources);
    assert.deepEqual(found.filter((v) => !KNOWN_VIOLATIONS.includes(v)), [], 'new layering violations');
    assert.deepEqual(KNOWN_VIOLATIONS.filter((v) => !found.includes(v)), [], 'fixed: remove these from KNOWN_VIOLATIONS');
  });
});

describe('the layering checker can fail', () => {
  const ok = "import { x } from './sibling';\n";
  const cases: Array<[string, string, string]> = [
    ['pipeline/check.ts', "import { toCheckResponse } from '../grpc/response';\n", 'pipeline/check.ts imports grpc/response'],
    ['authn/x.ts', "import type { Metadata } from '@grpc/grpc-js';\n", 'authn/x.ts imports @grpc/grpc-js'],
    ['authz/deep/y.ts', "const s = require('../../grpc/server');\n", 'authz/deep/y.ts imports grpc/server'],
    ['authn/jwt/z.ts', "export { a } from '../../grpc';\n", 'authn/jwt/z.ts imports grpc'],
    ['store/tokens.ts', "import type { Outcome } from '../pipeline/decision';\n", 'store/tokens.ts imports pipeline/decision'],
    ['store/q.ts', "const m = await import('../authn/jwt/index.js');\n", 'store/q.ts imports authn/jwt'],
    ['admin/routes.ts', "import type { App } from '../app';\n", 'admin/routes.ts imports app'],
    ['config/long.ts', ok.repeat(301), 'config/long.ts has 301 lines (max 300)'],
  ];
  for (const [file, text, expected] of cases) {
    test(`flags ${expected}`, () => {
      assert.deepEqual(layerViolations(new Map([[file, text]])), [expected]);
    });
  }

  test('allows what the rules allow', () => {
    const allowed = new Map([
      ['grpc/server.ts', "import * as grpc from '@grpc/grpc-js';\nimport { x } from '../pipeline/check';\n"],
      ['pipeline/check.ts', "import { AuthError } from '../errors/deny';\nimport type { Db } from '../store/db';\n"],
      ['app.ts', "import { startGrpcServer } from './grpc/server';\n"],
      ['admin/x.ts', "import { a } from '../application';\nimport { b } from './app';\n"],
      ['config/ok.ts', ok.repeat(300)],
    ]);
    assert.deepEqual(layerViolations(allowed), []);
  });
});
