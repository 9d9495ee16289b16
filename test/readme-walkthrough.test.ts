import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { embeddedStoreAt } from './helpers/pglite-template';
import { freePort } from './helpers/wait';
import { baseEnv, MAIN_JS, tempHome } from './helpers/spawn';

const README = join(__dirname, '..', '..', 'README.md');

/** The ```bash blocks of the token walkthrough, in order (they start with "# Shell 1" / "# Shell 2"). */
function walkthroughBlocks(): string[] {
  const text = readFileSync(README, 'utf8');
  return [...text.matchAll(/```bash\n(# Shell [12][^\n]*\n[\s\S]*?)```/g)].map((m) => m[1]!);
}

test('the README token walkthrough, run verbatim, ends with `orcheo token list` succeeding', async (t) => {
  const blocks = walkthroughBlocks();
  assert.equal(blocks.length, 4, 'expected four walkthrough blocks (shell 1, 2, 1, 2)');
  const home = tempHome();
  t.after(() => home.remove());
  // What `npm link` provides: the two bins on PATH.
  const bin = join(home.dir, 'bin');
  mkdirSync(bin);
  chmodSync(MAIN_JS, 0o755);
  for (const name of ['orcheo', 'orcheo-authz']) symlinkSync(MAIN_JS, join(bin, name));
  // The README's default store path, pre-initialised (initdb is seconds of CPU); the walkthrough's
  // commands still run verbatim, and a first start on an empty directory is serve-embedded.test.ts.
  await embeddedStoreAt(join(home.dir, '.orcheo', 'authz-db'));
  const port = await freePort();
  const env = baseEnv(home.dir, {
    PATH: `${bin}:${process.env.PATH}`,
    ORCHEO_AUTH_HTTP_ADDR: `127.0.0.1:${port}`,
    ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0',
    ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0',
    ORCHEO_API_URL: `http://127.0.0.1:${port}`,
  });

  // Shell 1 is one long-lived bash fed the server blocks, so its exports carry over like a terminal's.
  // Its own process group, so cleanup also ends the serve it runs (which would keep our pipes open).
  const server = spawn('bash', ['-s'], { env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  t.after(() => {
    try {
      process.kill(-server.pid!, 'SIGKILL');
    } catch {
      /* already gone */
    }
  });
  let out = '';
  server.stdout.on('data', (b: Buffer) => (out += b.toString()));
  server.stderr.on('data', (b: Buffer) => (out += b.toString()));
  const servings = (): number => out.split('orcheo-authz serving').length - 1;
  const until = async (n: number): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (servings() < n) {
      if (Date.now() > deadline || server.exitCode !== null) throw new Error(`server not serving:\n${out}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const shell2 = (block: string) => {
    const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', block], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `shell 2 block failed:\n${block}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    return r.stdout;
  };
  // Ctrl-C reaches the foreground command, not the shell: signal bash's child only.
  const ctrlC = async (): Promise<void> => {
    const children = readFileSync(`/proc/${server.pid}/task/${server.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
    assert.equal(children.length, 1, 'expected orcheo-authz serve as the only child of shell 1');
    process.kill(Number(children[0]), 'SIGINT');
    const deadline = Date.now() + 20_000;
    while (existsSync(`/proc/${children[0]}/status`) && !readFileSync(`/proc/${children[0]}/status`, 'utf8').includes('State:\tZ')) {
      if (Date.now() > deadline) throw new Error('server did not stop on SIGINT');
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  server.stdin.write(blocks[0]);
  await until(1);
  const created = shell2(blocks[1]!);
  assert.match(created, /Service token created successfully!\n\nID: production-token/);
  await ctrlC();
  server.stdin.write(blocks[2]);
  await until(2);
  assert.ok(!existsSync(join(home.dir, '.orcheo', 'bootstrap-token')));
  const listed = shell2(blocks[3]!);
  assert.match(listed, /^production-token\s/m);
  assert.match(listed, /^admin-token\s/m);
  // The second server really runs without the bootstrap token: the old value is refused now.
  assert.ok(!/bootstrap token configured/i.test(out.split('orcheo-authz serving')[1] ?? ''), 'restarted server still has a bootstrap token');
  server.stdin.end();
});
