/**
 * HTTP/2 rapid reset (CVE-2023-44487) against the real service: raw connections that open streams
 * and reset them at once, many in a burst. Node's HTTP/2 (nghttp2) answers with a GOAWAY and stops
 * reading, but nothing closes the socket: before the gRPC server had connection bounds
 * (grpc/server-options.ts CONNECTION_LIMITS), the server's end stayed open for good (CLOSE-WAIT once the
 * client half-closed), one file descriptor per abusive connection.
 *
 * The service runs in this process, so "the server still holds its end" is read directly: the
 * connection's row in /proc/net/tcp (server port -> client port) names a socket inode, and
 * /proc/self/fd says whether a descriptor still points at it. The bounds are injected short
 * (intervals.grpcIdleMs, grpcMaxAgeMs, grpcAgeGraceMs); every wait polls with a generous deadline.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import * as http2 from 'node:http2';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { AUTHZ_V3 } from '../src/grpc/descriptors';
import { startTestApp, type TestApp } from './helpers/app';
import { decodeCheckResponse, encodeCheckRequest } from './helpers/check-codec';
import { checkRequest, deniedStatus } from './helpers/grpc-client';
import { pollUntil, sleep, watchdog } from './helpers/wait';

const SKIP = !existsSync('/proc/net/tcp') && 'needs Linux /proc/net/tcp and /proc/self/fd';
const METHOD = `/${AUTHZ_V3}/Check`;
const IDLE_MS = 400;
/** nghttp2 lets a client reset 1000 streams in a burst (then 33/s): well past that. */
const PAIRS = 1500;
/** Watchdog for "the server closed it": far above every injected bound. */
const DEADLINE_MS = 10_000;

const HEADERS = 0x1;
const RST_STREAM = 0x3;
const SETTINGS = 0x4;
const GOAWAY = 0x7;
const END_HEADERS = 0x4;
const ACK = 0x1;
const CANCEL = 0x8;

function frame(type: number, flags: number, streamId: number, payload = Buffer.alloc(0)): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}

/** HPACK literal header field without indexing, new name (RFC 7541 6.2.2); every string here is under 127 bytes. */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}

const CHECK_HEADERS = Buffer.concat([
  literal(':method', 'POST'), literal(':scheme', 'http'), literal(':path', METHOD), literal(':authority', 'localhost'),
  literal('content-type', 'application/grpc'), literal('te', 'trailers'),
]);

interface Abuser {
  readonly socket: Socket;
  readonly localPort: number;
  /** Error codes of the GOAWAY frames the server sent. */
  readonly goaways: number[];
  closed(): boolean;
}

/**
 * A raw HTTP/2 connection that sends PAIRS HEADERS + RST_STREAM(CANCEL) pairs in one write, then
 * either goes silent or half-closes (`end`). `holdStream` first opens a stream it never finishes,
 * so the connection is never idle.
 */
async function abuse(port: number, opts: { halfClose: boolean; holdStream?: boolean }): Promise<Abuser> {
  const socket = connect(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const goaways: number[] = [];
  let closed = false;
  let inbox = Buffer.alloc(0);
  let serverSettings!: () => void;
  const settingsSeen = new Promise<void>((resolve) => (serverSettings = resolve));
  socket.on('data', (d: Buffer) => {
    inbox = Buffer.concat([inbox, d]);
    while (inbox.length >= 9 && inbox.length >= 9 + inbox.readUIntBE(0, 3)) {
      const len = inbox.readUIntBE(0, 3);
      if (inbox[3] === GOAWAY) goaways.push(inbox.readUInt32BE(9 + 4));
      if (inbox[3] === SETTINGS && !(inbox[4]! & ACK)) serverSettings();
      inbox = inbox.subarray(9 + len);
    }
  });
  socket.on('error', () => undefined); // a reset from the server's side is one way of closing
  socket.on('close', () => (closed = true));
  const cancel = Buffer.alloc(4);
  cancel.writeUInt32BE(CANCEL);
  const out = [Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(SETTINGS, 0, 0)];
  if (opts.holdStream) out.push(frame(HEADERS, END_HEADERS, 1, CHECK_HEADERS));
  for (let i = 0; i < PAIRS; i++) {
    const id = 3 + 2 * i;
    out.push(frame(HEADERS, END_HEADERS, id, CHECK_HEADERS), frame(RST_STREAM, 0, id, cancel));
  }
  // The burst only once the server's session is up and reading (its SETTINGS arrived), so it is not
  // left waiting in the socket while the idle timer runs.
  socket.write(Buffer.concat(out.splice(0, 2)));
  await watchdog(settingsSeen, DEADLINE_MS, "the server's SETTINGS");
  socket.write(Buffer.concat([frame(SETTINGS, ACK, 0), ...out]));
  if (opts.halfClose) socket.end();
  return { socket, localPort: socket.localPort!, goaways, closed: () => closed };
}

/** Whether this process (the service runs in it) holds a descriptor for the server's end of the connection from `clientPort`. */
function serverHoldsFd(serverPort: number, clientPort: number): boolean {
  const inodes = new Set<string>();
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const port = (addr: string): number => parseInt(addr.split(':')[1]!, 16);
    if (port(f[1]!) === serverPort && port(f[2]!) === clientPort && f[9] !== '0') inodes.add(`socket:[${f[9]}]`);
  }
  if (inodes.size === 0) return false;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (inodes.has(readlinkSync(`/proc/self/fd/${fd}`))) return true;
    } catch {
      // closed meanwhile (readdir's own descriptor among them)
    }
  }
  return false;
}

/**
 * Opens the abusers one after another, each once the server has taken the previous one for rapid
 * reset, then waits for the server to close its end of every one. One at a time because the server
 * reads the bursts on one thread: a connection whose burst waited behind another's 1500 streams for a
 * whole idle period would be closed as idle before its burst is read (a GOAWAY NO_ERROR, then no
 * rate limiting), which is not the case under test.
 */
async function abuseAndExpectClosed(port: number, specs: Array<{ halfClose: boolean; holdStream?: boolean }>): Promise<number> {
  const abusers: Abuser[] = [];
  try {
    for (const spec of specs) {
      for (let attempt = 1; ; attempt++) {
        const a = await abuse(port, spec);
        abusers.push(a);
        // The detector itself: once accepted, the server does hold a descriptor for the connection.
        await pollUntil('server accepted the abusive connection', () => a.closed() || serverHoldsFd(port, a.localPort), { timeoutMs: DEADLINE_MS, everyMs: 10 });
        const { value } = await pollUntil('a GOAWAY with an error code (rapid reset detected)', () => (a.goaways.some((c) => c !== 0) ? 'detected' : a.closed() && 'closed'), { timeoutMs: DEADLINE_MS, everyMs: 10 });
        if (value === 'detected') break;
        // Closed with GOAWAY NO_ERROR only: the idle timer ran out before the server had read the
        // burst (a stalled machine), so this connection tested nothing; open another.
        assert.ok(attempt < 3, `closed as idle before its burst was read, ${attempt} times (GOAWAY codes ${a.goaways.join(',')})`);
      }
    }
    const { ms } = await pollUntil('the server closes its end of every abusive connection', () => abusers.every((a) => !serverHoldsFd(port, a.localPort)), { timeoutMs: DEADLINE_MS, everyMs: 25 });
    await pollUntil('every abusive client socket is closed', () => abusers.every((a) => a.closed()), { timeoutMs: DEADLINE_MS, everyMs: 10 });
    return ms;
  } finally {
    for (const a of abusers) a.socket.destroy();
  }
}

/** One unary Check on a raw HTTP/2 session; `hold` delays sending the request message (the stream stays open meanwhile). Resolves to grpc-status. */
function rawCheck(session: http2.ClientHttp2Session, hold?: Promise<unknown>): Promise<number> {
  const body = encodeCheckRequest(checkRequest({}));
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  const stream = session.request({ ':method': 'POST', ':path': METHOD, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
  return new Promise<number>((resolve, reject) => {
    let status: string | undefined;
    const grab = (h: http2.IncomingHttpHeaders): void => void (status ??= h['grpc-status'] as string | undefined);
    stream.on('response', grab).on('trailers', grab).on('error', reject).on('close', () => resolve(Number(status)));
    stream.resume();
    void Promise.resolve(hold).then(() => stream.end(Buffer.concat([prefix, body])));
  });
}

/** A @grpc/grpc-js client of its own (own connection), calling Check with the raw codec. */
function grpcCheck(client: grpc.Client): Promise<ReturnType<typeof decodeCheckResponse>> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(METHOD, (b: Buffer) => b, decodeCheckResponse, encodeCheckRequest(checkRequest({})), { deadline: Date.now() + 5000 }, (err, res) => (err ? reject(err) : resolve(res!)));
  });
}

describe('rapid reset: abusive connections are closed by the idle timeout', { skip: SKIP }, () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required' }, 'auto', undefined, { intervals: { grpcIdleMs: IDLE_MS } });
  });
  after(async () => {
    await t?.stop();
  });

  test('silent and half-closed rapid-reset connections: the server closes its end of each', async (ctx) => {
    const ms = await abuseAndExpectClosed(t.app.grpcPort, [{ halfClose: false }, { halfClose: false }, { halfClose: true }, { halfClose: true }]);
    ctx.diagnostic(`closed ${Math.round(ms)} ms after the last GOAWAY (idle timeout ${IDLE_MS} ms)`);
  });

  test('a normal client is answered after the abusers', async () => {
    assert.equal(deniedStatus(await t.client.check({})), 401);
  });

  test('a busy connection, and one with a stream open past the idle timeout, are not cut; once idle it is closed with GOAWAY NO_ERROR', async () => {
    const session = http2.connect(`http://127.0.0.1:${t.app.grpcPort}`);
    const events: string[] = [];
    session.on('goaway', (code: number) => events.push(`goaway ${code}`)).on('close', () => events.push('close')).on('error', () => undefined);
    try {
      // Back to back for four idle periods: never a whole period without an open stream.
      let calls = 0;
      for (const start = performance.now(); performance.now() - start < 4 * IDLE_MS; calls++) assert.equal(await rawCheck(session), grpc.status.OK);
      assert.equal(events.join(', '), '', `after ${calls} back-to-back calls`);
      // One stream open across three idle periods before it sends its request.
      assert.equal(await rawCheck(session, sleep(3 * IDLE_MS)), grpc.status.OK);
      assert.equal(events.join(', '), '', 'after a call held open for three idle periods');
      await pollUntil('the idle connection is closed by the server', () => events.includes('close'), { timeoutMs: DEADLINE_MS, everyMs: 10 });
      assert.ok(events.includes(`goaway ${http2.constants.NGHTTP2_NO_ERROR}`), events.join(', '));
    } finally {
      session.destroy();
    }
  });

  test('a @grpc/grpc-js client whose idle connection was closed reconnects on its next call', async () => {
    const client = new grpc.Client(`127.0.0.1:${t.app.grpcPort}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
    try {
      assert.equal(deniedStatus((await grpcCheck(client)) as never), 401);
      assert.equal(client.getChannel().getConnectivityState(false), grpc.connectivityState.READY);
      await pollUntil('the channel goes IDLE after the server closes the idle connection', () => client.getChannel().getConnectivityState(false) === grpc.connectivityState.IDLE, { timeoutMs: DEADLINE_MS, everyMs: 10 });
      assert.equal(deniedStatus((await grpcCheck(client)) as never), 401);
    } finally {
      client.close();
    }
  });
});

describe('rapid reset: a connection that holds a stream open is cut at its max age', { skip: SKIP }, () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required' }, 'auto', undefined, { intervals: { grpcIdleMs: IDLE_MS, grpcMaxAgeMs: 1000, grpcAgeGraceMs: 300 } });
  });
  after(async () => {
    await t?.stop();
  });

  test('never idle (one stream open), silent or half-closed: closed after max age plus grace', async (ctx) => {
    const ms = await abuseAndExpectClosed(t.app.grpcPort, [{ halfClose: false, holdStream: true }, { halfClose: true, holdStream: true }]);
    ctx.diagnostic(`closed ${Math.round(ms)} ms after the last GOAWAY (max age 1000 ms ±10%, grace 300 ms)`);
    assert.equal(deniedStatus(await t.client.check({})), 401);
  });
});
