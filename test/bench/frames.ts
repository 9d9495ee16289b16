/**
 * The bytes every load generator sends: gRPC length-prefixed CheckRequest frames, serialised with the
 * same proto definitions the service uses, plus a one-shot raw HTTP/2 call that sends those exact bytes
 * and decodes the answer (the correctness check run before each timed scenario).
 */
import { createHmac } from 'node:crypto';
import { connect } from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import { AUTHZ_V3, loadPackageDefinition } from '../../src/grpc/descriptors';
import { checkRequest, type CheckResult } from '../helpers/grpc-client';

export const CHECK_PATH = `/${AUTHZ_V3}/Check`;

let method: grpc.MethodDefinition<unknown, CheckResult> | undefined;
function checkMethod(): grpc.MethodDefinition<unknown, CheckResult> {
  method ??= (loadPackageDefinition()[AUTHZ_V3] as unknown as grpc.ServiceDefinition)['Check'] as grpc.MethodDefinition<unknown, CheckResult>;
  return method;
}

/** The headers Envoy forwards for a typical API call, so parsing costs what it costs in production. */
function envoyHeaders(authorization: string | undefined, i: number): Record<string, string> {
  const h: Record<string, string> = {
    ':authority': 'api.example.com',
    ':method': 'GET',
    ':path': '/api/workflows?limit=50',
    ':scheme': 'https',
    accept: 'application/json',
    'user-agent': 'orcheo-bench/1.0',
    'x-forwarded-proto': 'https',
    'x-request-id': `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
  };
  if (authorization !== undefined) h.authorization = authorization;
  return h;
}

/** One gRPC message frame: flag byte 0 (uncompressed), 4-byte big-endian length, CheckRequest bytes. */
export function checkFrame(bearer: string | undefined, i = 0): Buffer {
  const req = checkRequest({ method: 'GET', path: '/api/workflows?limit=50', headers: envoyHeaders(bearer === undefined ? undefined : `Bearer ${bearer}`, i), sourceIp: '10.1.2.3' });
  const body = checkMethod().requestSerialize(req);
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}

/** HS256 JWT signed with node:crypto directly (tens of thousands are minted per run). */
export function signHs256(secret: string, payload: Record<string, unknown>): string {
  const enc = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');
  const input = `${enc({ alg: 'HS256', typ: 'JWT' })}.${enc(payload)}`;
  return `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
}

export function jwtPayload(sub: string, jti: string): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return { sub, jti, iat: now, exp: now + 3600, scope: 'workflows:read workflows:write', workspace_ids: ['ws-1', 'ws-2'] };
}

export interface RawCallResult {
  readonly httpStatus: number;
  readonly grpcStatus: string | undefined;
  readonly response: CheckResult | undefined;
  /** The encoded CheckResponse message (without the 5-byte gRPC prefix), for the same-reply baseline. */
  readonly bytes: Buffer;
}

/** Sends one frame over a fresh HTTP/2 connection exactly as h2load does, and decodes the reply. */
export function rawCheck(port: number, frame: Buffer, timeoutMs = 5000): Promise<RawCallResult> {
  return new Promise((resolve, reject) => {
    const session = connect(`http://127.0.0.1:${port}`);
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`no answer from 127.0.0.1:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    session.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const req = session.request({ ':method': 'POST', ':path': CHECK_PATH, 'content-type': 'application/grpc', te: 'trailers' });
    let httpStatus = 0;
    let grpcStatus: string | undefined;
    const chunks: Buffer[] = [];
    req.on('response', (h) => {
      httpStatus = Number(h[':status']);
      if (h['grpc-status'] !== undefined) grpcStatus = String(h['grpc-status']); // trailers-only answer
    });
    req.on('trailers', (t) => {
      grpcStatus = String(t['grpc-status']);
    });
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      const body = Buffer.concat(chunks);
      const bytes = body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : Buffer.alloc(0);
      const response = body.length >= 5 ? checkMethod().responseDeserialize(bytes) : undefined;
      resolve({ httpStatus, grpcStatus, response, bytes });
    });
    req.end(frame);
  });
}

/** Names the proto-loader decoder gives the HTTP status enum of a deny. */
const DENY_NAMES: Record<string, number> = { Unauthorized: 401, Forbidden: 403, TooManyRequests: 429, ServiceUnavailable: 503 };

export type Expectation = { kind: 'ok' } | { kind: 'allow'; subject: string } | { kind: 'deny'; status: number; code: string };

/** Throws unless the decoded reply is the decision the scenario claims to measure. */
export function assertReply(label: string, r: RawCallResult, want: Expectation): void {
  const fail = (why: string): never => {
    throw new Error(`${label}: correctness check failed: ${why}; reply ${JSON.stringify(r.response)}`);
  };
  if (r.httpStatus !== 200 || r.grpcStatus !== '0') fail(`HTTP ${r.httpStatus}, grpc-status ${r.grpcStatus}`);
  const res = r.response ?? fail('no CheckResponse message');
  if (want.kind === 'ok') return;
  if (want.kind === 'allow') {
    if (!res.ok_response || res.denied_response) fail('expected ok_response');
    const sub = res.ok_response?.headers?.find((h) => h.header.key === 'x-orcheo-subject')?.header.value;
    if (sub !== want.subject) fail(`x-orcheo-subject ${sub}, expected ${want.subject}`);
    return;
  }
  const d = res.denied_response ?? fail('expected denied_response');
  const status = typeof d.status.code === 'number' ? d.status.code : DENY_NAMES[d.status.code];
  if (status !== want.status) fail(`HTTP ${status}, expected ${want.status}`);
  const code = (JSON.parse(d.body) as { code?: string }).code;
  if (code !== want.code) fail(`deny code ${code}, expected ${want.code}`);
}
