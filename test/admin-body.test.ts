import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';

// A 3 MB admin body must be answered 413 with the JSON error, not a connection reset, whatever
// the client: each one here is still sending when the answer is ready.
const BOOT = 'bootstrap-secret-for-body-tests-0123456789';
const BIG = 3 * 1024 * 1024;
let a: TestApp;
let url: string;

before(async () => {
  a = await startTestApp({ ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT, ORCHEO_AUTH_MODE: 'required' }, 'auto');
  url = `http://127.0.0.1:${a.app.httpPort}/api/admin/service-tokens`;
});
after(() => a.stop());

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => execFile(cmd, args, { maxBuffer: 1 << 20, timeout: 30_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${err.message} ${stderr}`)) : resolve(stdout))));
}

function assertTooLarge(status: number, text: string): void {
  assert.equal(status, 413, text);
  const body = JSON.parse(text) as { code: string; message: string };
  assert.equal(body.code, 'request.body_too_large');
  assert.match(body.message, /at most 65536 bytes/);
}

test('Node fetch reads the 413 for a 3 MB body (declared length)', async () => {
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${BOOT}`, 'content-type': 'application/json' }, body: `{"pad":"${'x'.repeat(BIG)}"}` });
  assertTooLarge(res.status, await res.text());
});

test('Node fetch reads the 413 for a 3 MB streamed body (no length: cut off while reading)', async () => {
  let sent = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent >= BIG) return c.close();
      sent += 64 * 1024;
      c.enqueue(new Uint8Array(64 * 1024).fill(0x78));
    },
  });
  const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${BOOT}` }, body, duplex: 'half' } as RequestInit);
  assertTooLarge(res.status, await res.text());
});

test('curl reads the 413 for a 3 MB body', async () => {
  const out = await run('bash', ['-c', `head -c ${BIG} /dev/zero | tr '\\0' x | curl -sS -o - -w '\\n%{http_code}' -X POST -H 'authorization: Bearer ${BOOT}' -H 'content-type: application/json' --data-binary @- '${url}'`]);
  const nl = out.lastIndexOf('\n');
  assertTooLarge(Number(out.slice(nl + 1)), out.slice(0, nl));
});

test('Python urllib reads the 413 for a 3 MB body', async () => {
  const py = [
    'import sys, urllib.request, urllib.error',
    `req = urllib.request.Request(sys.argv[1], data=b"x" * ${BIG}, method="POST", headers={"authorization": "Bearer ${BOOT}", "content-type": "application/json"})`,
    'try:',
    '    r = urllib.request.urlopen(req); print(r.status); print(r.read().decode())',
    'except urllib.error.HTTPError as e:',
    '    print(e.code); print(e.read().decode())',
  ].join('\n');
  const out = (await run('python3', ['-c', py, url])).trim();
  const nl = out.indexOf('\n');
  assertTooLarge(Number(out.slice(0, nl)), out.slice(nl + 1));
});

test('the connection still serves the next request after a drained 413', async () => {
  const first = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${BOOT}` }, body: 'y'.repeat(200 * 1024) });
  assertTooLarge(first.status, await first.text());
  const next = await fetch(url, { headers: { authorization: `Bearer ${BOOT}` } });
  assert.equal(next.status, 200, await next.text());
});
