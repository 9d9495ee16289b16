import { cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createTestSchema, pgReachable } from './pg';

/**
 * PGlite runs initdb for every new data directory: 3-9 s of CPU each, the largest single cost of
 * the suite. Tests that use the embedded store get a copy of one initialised, empty cluster
 * instead; opening an existing data directory is the path production takes on every restart, and
 * the schema is still created by the service itself (the template holds no tables). A first start
 * on an empty directory stays covered by serve-embedded.test.ts, which does not use this.
 *
 * The template is shared by the test processes of a run (and later runs) through tmpdir, keyed by
 * the PGlite version: built in a private directory and renamed into place, so a concurrent builder
 * loses the rename and a half-written template is never seen.
 */
// The package's exports map hides package.json; find it beside the entry point.
function pgliteVersion(): string {
  let dir = dirname(require.resolve('@electric-sql/pglite'));
  while (!existsSync(join(dir, 'package.json')) || !readFileSync(join(dir, 'package.json'), 'utf8').includes('"@electric-sql/pglite"')) {
    if (dirname(dir) === dir) throw new Error('@electric-sql/pglite/package.json not found');
    dir = dirname(dir);
  }
  return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
}
const PGLITE_VERSION = pgliteVersion();
const TEMPLATE = join(tmpdir(), `orcheo-authz-pglite-template-${PGLITE_VERSION}-${process.getuid?.() ?? 0}`);
const READY = 'orcheo-template-ready';

let building: Promise<string> | undefined;

export function pgliteTemplate(): Promise<string> {
  building ??= (async () => {
    if (existsSync(join(TEMPLATE, READY))) return TEMPLATE;
    const { PGlite } = await import('@electric-sql/pglite');
    const work = mkdtempSync(`${TEMPLATE}.build-`);
    const db = await PGlite.create(work);
    await db.close();
    writeFileSync(join(work, READY), '');
    try {
      renameSync(work, TEMPLATE);
    } catch {
      // Another test process renamed its copy first (or a stale, unmarked one is in the way).
      rmSync(work, { recursive: true, force: true });
      if (!existsSync(join(TEMPLATE, READY))) {
        rmSync(TEMPLATE, { recursive: true, force: true });
        building = undefined;
        return pgliteTemplate();
      }
    }
    return TEMPLATE;
  })();
  return building;
}

/** A fresh embedded data directory at `dir` (created), copied from the template. */
export async function embeddedStoreAt(dir: string): Promise<string> {
  cpSync(await pgliteTemplate(), dir, { recursive: true, filter: (src) => !src.endsWith(READY) });
  return dir;
}

/** A fresh embedded data directory in tmpdir, for one test app; remove() deletes it. */
export async function embeddedStore(): Promise<{ dir: string; remove(): void }> {
  const dir = await embeddedStoreAt(mkdtempSync(join(tmpdir(), 'orcheo-authz-store-')));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A token store for a child `serve` in a test that is not about the store: a fresh Postgres schema
 * when Postgres is reachable, else a copy of the embedded template: on the embedded store a child
 * `serve` costs ~3 s more CPU (PGlite's WASM build and cluster start; measured 3.7 s against 0.7 s
 * on Postgres). Stop the server before remove().
 */
export async function childStore(): Promise<{ env: Record<string, string>; remove(): Promise<void> }> {
  if (await pgReachable()) {
    const schema = await createTestSchema('child');
    return { env: { ORCHEO_AUTH_DATABASE_URL: schema.url }, remove: () => schema.drop() };
  }
  const store = await embeddedStore();
  return { env: { ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: store.dir }, remove: async () => store.remove() };
}
