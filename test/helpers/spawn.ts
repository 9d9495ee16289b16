import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { reap } from './reaper';

/** The built entry point (both bins): dist/src/main.js, seen from dist/test/helpers. */
export const MAIN_JS = resolve(__dirname, '..', '..', 'src', 'main.js');


/** A clean environment: nothing ORCHEO_* leaks in from the developer's shell. */
export function baseEnv(home: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C.UTF-8', NODE_NO_WARNINGS: '1' };
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) env[k] = v;
  return env;
}

/** A throw-away HOME (for ~/.config/orcheo/cli.toml and the embedded store). */
export function tempHome(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'orcheo-authz-test-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** http://127.0.0.1:<httpPort> */
  readonly url: string;
  /** Everything the server wrote to stderr/stdout (its JSON log lines). */
  logs(): string;
  /** Waits for a log line matching `re`: lines are buffered and flushed at least every second. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** SIGTERM, wait for exit (SIGKILL after `graceMs`); resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export interface StartServerOptions {
  readonly home?: string;
  readonly timeoutMs?: number;
  /** Another entry point (e.g. dist/test/soak/server.js) that prints the same "serving" line; default `main.js serve`. */
  readonly script?: string;
  readonly nodeArgs?: readonly string[];
}

/**
 * Spawns `node dist/src/main.js serve` (or opts.script) on OS-chosen loopback ports and waits until
 * it logs "orcheo-authz serving" (which carries the bound ports): the one way tests start the
 * service in a child process, so no test picks a port another process may take first.
 */
export async function startServer(env: Record<string, string | undefined>, opts: StartServerOptions = {}): Promise<ServerProcess> {
  const home = opts.home ?? tmpdir();
  // Readiness is read from the "orcheo-authz serving" info line (the soak server prints it at any level).
  if (!opts.script && env.LOG_LEVEL && !['info', 'debug', 'trace'].includes(env.LOG_LEVEL)) throw new Error('startServer needs LOG_LEVEL info or lower');
  const args = opts.script ? [...(opts.nodeArgs ?? []), opts.script] : [...(opts.nodeArgs ?? []), MAIN_JS, 'serve'];
  const child = spawn(process.execPath, args, {
    env: baseEnv(home, { ORCHEO_AUTH_GRPC_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_ADDR: '127.0.0.1:0', ORCHEO_AUTH_HTTP_AUTHZ_ADDR: '127.0.0.1:0', LOG_LEVEL: 'info', ...env }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  reap(child);
  let out = '';
  let exited: number | null | undefined;
  const exitP = new Promise<number | null>((res) =>
    child.once('exit', (code) => {
      exited = code;
      res(code);
    }),
  );
  const ready = new Promise<{ grpc: number; http: number }>((resolveReady, reject) => {
    // A watchdog, not a measurement: the embedded store's WASM start alone takes seconds on a busy machine.
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const timer = setTimeout(() => reject(new Error(`server not ready within ${timeoutMs} ms:\n${out}`)), timeoutMs);
    const onData = (buf: Buffer): void => {
      out += buf.toString('utf8');
      for (const line of out.split('\n')) {
        if (!line.includes('orcheo-authz serving')) continue;
        try {
          const j = JSON.parse(line) as { grpc: string; http: string };
          clearTimeout(timer);
          resolveReady({ grpc: Number(j.grpc.split(':').pop()), http: Number(j.http.split(':').pop()) });
          return;
        } catch {
          /* partial line */
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exitP.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before it was ready:\n${out}`));
    });
  });
  let ports: { grpc: number; http: number };
  try {
    ports = await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    child,
    grpcPort: ports.grpc,
    httpPort: ports.http,
    url: `http://127.0.0.1:${ports.http}`,
    logs: () => out,
    async waitForLog(re: RegExp, timeoutMs = 3000): Promise<string> {
      const until = Date.now() + timeoutMs;
      while (!re.test(out)) {
        if (Date.now() > until) throw new Error(`no log line matching ${re} within ${timeoutMs} ms:\n${out.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return out;
    },
    async stop(graceMs = 10000) {
      if (exited !== undefined) return exited;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exitP;
      clearTimeout(t);
      return code;
    },
  };
}

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the CLI (`node dist/src/main.js …args`, or another script path such as an `orcheo` symlink). */
export function runCli(args: string[], env: Record<string, string | undefined>, opts: { home: string; script?: string; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [opts.script ?? MAIN_JS, ...args], { env: baseEnv(opts.home, env), stdio: ['ignore', 'pipe', 'pipe'] });
    reap(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`CLI ${args.join(' ')} did not finish within ${opts.timeoutMs ?? 30000} ms\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 30000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolveRun({ code, stdout, stderr });
    });
  });
}

export interface AdminResponse<T = any> {
  readonly status: number;
  readonly headers: Headers;
  readonly body: T;
  readonly text: string;
}

/** One admin API call: `path` is relative to /api/admin/service-tokens. */
export async function adminRequest<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  opts: { token?: string | undefined; body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> } = {},
): Promise<AdminResponse<T>> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  let body: string | Buffer | undefined;
  if (opts.rawBody !== undefined) body = opts.rawBody;
  else if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers['content-type'] = 'application/json';
  }
  const res = await fetch(`${baseUrl}/api/admin/service-tokens${path}`, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** A loopback port nothing listens on (bound, then released): the same as a free port. */
export { freePort as closedPort } from './wait';
