/**
 * Real reverse proxies (nginx, Caddy) as child processes on loopback, running the SHIPPED config
 * files with only their addresses replaced, in front of a small echo upstream.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type IncomingHttpHeaders, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from './redis-server';

export const DEPLOY = resolve(__dirname, '..', '..', '..', 'deploy');

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly upgrade: boolean;
}

export interface EchoUpstream {
  readonly port: number;
  readonly seen: Seen[];
  close(): Promise<void>;
}

/** Answers 200 to requests and 101 to WebSocket handshakes, recording what it received. */
export async function startEcho(): Promise<EchoUpstream> {
  const seen: Seen[] = [];
  const server: Server = createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: false });
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain' }).end('upstream');
  });
  server.on('upgrade', (req, socket) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, upgrade: true });
    const accept = createHash('sha1').update(`${String(req.headers['sec-websocket-key'])}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.end(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const a = server.address();
  return {
    port: typeof a === 'object' && a ? a.port : 0,
    seen,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The proxy's binary, or undefined with the reason a test skips. */
export function proxyBinary(name: 'nginx' | 'caddy'): { bin?: string; skip?: string } {
  for (const dir of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/local/sbin'])) {
    const p = join(dir, name);
    if (!dir || !existsSync(p)) continue;
    // Debian's nginx has compiled-in temp paths under /var/lib/nginx that the shipped config does not
    // move; as a user who cannot write there, nginx refuses to start.
    if (name === 'nginx' && !writable('/var/lib/nginx')) return { skip: 'nginx needs a writable /var/lib/nginx (run as root, as CI does)' };
    return { bin: p };
  }
  return { skip: `${name} not installed (apt-get install ${name}; .ci/run does)` };
}

/**
 * The shipped file with each `[from, to]` replaced. Each `from` must occur exactly once, so a
 * config edit that moves an address breaks the test loudly instead of testing something else.
 */
export function renderConfig(file: string, swaps: ReadonlyArray<readonly [string, string]>): string {
  let text = readFileSync(file, 'utf8');
  for (const [from, to] of swaps) {
    const n = text.split(from).length - 1;
    if (n !== 1) throw new Error(`${file}: expected exactly one "${from}", found ${n}`);
    text = text.replace(from, to);
  }
  return text;
}

export interface ProxyProcess {
  readonly port: number;
  output(): string;
  close(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((r) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      r(true);
    });
    s.on('error', () => r(false));
  });
}

/**
 * Starts the proxy on a free loopback port; these proxies cannot listen on port 0 and report the
 * port, so a port taken between choosing and binding is retried with another one.
 */
async function startOn(make: (port: number, dir: string) => { cmd: string; args: string[]; env?: NodeJS.ProcessEnv }): Promise<ProxyProcess> {
  let lastOutput = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'orcheo-proxy-'));
    const { cmd, args, env } = make(port, dir);
    const child: ChildProcess = spawn(cmd, args, { env: env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    let exited = false;
    child.once('exit', () => (exited = true));
    const close = async (): Promise<void> => {
      if (!exited) {
        const gone = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await gone;
      }
      rmSync(dir, { recursive: true, force: true });
    };
    const deadline = Date.now() + 15_000;
    while (!exited && Date.now() < deadline && !(await accepts(port))) await new Promise((r) => setTimeout(r, 50));
    if (!exited && (await accepts(port))) return { port, output: () => out, close };
    await close();
    lastOutput = out;
    if (!/address already in use/i.test(out)) break;
  }
  throw new Error(`proxy did not start: ${lastOutput.slice(-2000)}`);
}

export interface Backends {
  readonly authzPort: number;
  readonly upstreamPort: number;
}

/**
 * nginx with deploy/nginx/nginx.conf (master in the foreground; workers drop to `nobody` as root).
 * `extraSwaps` is for the bench only (its no-auth_request comparison); tests pass none.
 */
export function startNginx(bin: string, b: Backends, extraSwaps: ReadonlyArray<readonly [string, string]> = []): Promise<ProxyProcess> {
  return startOn((port, dir) => {
    const conf = renderConfig(join(DEPLOY, 'nginx', 'nginx.conf'), [
      ['listen 8080;', `listen 127.0.0.1:${port};`],
      ['server orcheo-authz:9192;', `server 127.0.0.1:${b.authzPort};`],
      ['server app:8080;', `server 127.0.0.1:${b.upstreamPort};`],
      ...extraSwaps,
    ]);
    writeFileSync(join(dir, 'nginx.conf'), conf);
    return { cmd: bin, args: ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr', '-g', `daemon off; pid ${join(dir, 'nginx.pid')};`] };
  });
}

/** Caddy with deploy/caddy/Caddyfile, its state kept in the temporary directory. */
export function startCaddy(bin: string, b: Backends): Promise<ProxyProcess> {
  return startOn((port, dir) => {
    const conf = renderConfig(join(DEPLOY, 'caddy', 'Caddyfile'), [
      ['http://:8080 {', `http://127.0.0.1:${port} {`],
      ['forward_auth orcheo-authz:9192 {', `forward_auth 127.0.0.1:${b.authzPort} {`],
      ['reverse_proxy app:8080', `reverse_proxy 127.0.0.1:${b.upstreamPort}`],
    ]);
    writeFileSync(join(dir, 'Caddyfile'), conf);
    const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir };
    return { cmd: bin, args: ['run', '--config', join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], env };
  });
}

/** One request with a fresh connection; the whole answer as text. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

export function call(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
