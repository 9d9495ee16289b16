/**
 * The server reads v3 CheckRequests with its own field walker (src/grpc/decode.ts) instead of
 * proto-loader's generic decoder. The oracle is proto-loader itself (protobufjs, independent of our
 * code): every request — random ones, with fields we skip, duplicates, raw header values, and
 * concatenated encodings — must map to the same RequestParts both ways; damaged bytes must throw
 * an Error or decode to something, never anything else; and a real server answers a damaged frame
 * INTERNAL and goes on serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:http2';
import { after, before, describe, test } from 'node:test';
import { AUTHZ_V3 } from '../src/grpc/descriptors';
import { decodeCheckRequest } from '../src/grpc/decode';
import { fromCheckRequest, type RawCheckRequest } from '../src/grpc/request';
import type { RequestParts } from '../src/pipeline/decision';
import { serverCheck } from './helpers/wire-schemas';
import { startTestApp, type TestApp } from './helpers/app';

const method = serverCheck(AUTHZ_V3) as unknown as { requestSerialize(o: unknown): Buffer; requestDeserialize(b: Buffer): unknown };
const viaProtoLoader = (wire: Buffer): RequestParts => fromCheckRequest(method.requestDeserialize(wire) as RawCheckRequest);

/** Deterministic PRNG (mulberry32), so a failure names its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const NAMES = ['authorization', 'Authorization', 'x-request-id', ':path', ':method', 'x-orcheo-subject', 'X-Forwarded-For', 'cookie', 'host', ''];
const VALUES = ['Bearer abc', '', 'v', '/api/x?y=1', 'GET', 'é ü', '1.2.3.4, 5.6.7.8', 'a,b'];

function randomRequest(next: () => number): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const maybe = (p = 0.5): boolean => next() < p;
  const headers: Record<string, string> = {};
  for (let i = Math.floor(next() * 6); i > 0; i--) headers[pick(NAMES)] = pick(VALUES);
  const http: Record<string, unknown> = { headers };
  if (maybe()) http.method = pick(['GET', 'post', '', 'DELETE']);
  if (maybe()) http.path = pick(['/api/workflows', '/api/x?token=1', '', '/a//b/../c']);
  if (maybe(0.3)) http.query = pick(['a=1', '', 'access_token=t']);
  // Fields the decoder skips: they must change nothing.
  if (maybe()) Object.assign(http, { id: '7', host: 'api.example.com', scheme: 'https', protocol: 'HTTP/2', size: '12', body: 'x', raw_body: Buffer.from([1, 2]) });
  if (maybe(0.3)) {
    http.header_map = {
      headers: Array.from({ length: 1 + Math.floor(next() * 3) }, () => ({ key: pick(NAMES), ...(maybe() ? { value: pick(VALUES) } : {}), ...(maybe(0.3) ? { raw_value: Buffer.from(pick(VALUES), 'latin1') } : {}) })),
    };
  }
  const attributes: Record<string, unknown> = { request: { time: { seconds: '1', nanos: 2 }, http } };
  if (maybe()) attributes.source = { address: { socket_address: { address: pick(['10.0.0.1', '::1', '']), port_value: 4242 } }, principal: 'spiffe://x', labels: { a: 'b' } };
  if (maybe(0.3)) attributes.destination = { address: { socket_address: { address: '10.9.9.9', port_value: 443 } } };
  if (maybe(0.3)) attributes.context_extensions = { required_scopes: 'workflows:read', auth: pick(['public', 'required', '']) };
  if (maybe(0.2)) attributes.tls_session = { sni: 'api.example.com' };
  if (maybe(0.2)) attributes.metadata_context = { filter_metadata: { envoy: { fields: { k: { string_value: 'v' } } } } };
  return { attributes };
}

describe('the v3 CheckRequest decoder agrees with proto-loader', () => {
  test('2000 random requests, with skipped fields, duplicates and raw header values', () => {
    const next = rng(20261202);
    for (let i = 0; i < 2000; i++) {
      const wire = method.requestSerialize(randomRequest(next));
      assert.deepEqual(decodeCheckRequest(wire), viaProtoLoader(wire), `request ${i}: ${wire.toString('base64')}`);
    }
  });

  test('concatenated encodings: the last singular field wins and map entries merge, as protobufjs reads them', () => {
    const next = rng(7);
    for (let i = 0; i < 300; i++) {
      const wire = Buffer.concat([method.requestSerialize(randomRequest(next)), method.requestSerialize(randomRequest(next))]);
      assert.deepEqual(decodeCheckRequest(wire), viaProtoLoader(wire), `pair ${i}`);
    }
  });

  test('a request Envoy fills in reads the fields the pipeline uses', () => {
    const wire = method.requestSerialize({
      attributes: {
        source: { address: { socket_address: { address: '10.1.2.3', port_value: 5555 } } },
        request: { http: { method: 'GET', path: '/api/workflows?limit=5', query: 'limit=5', headers: { Authorization: 'Bearer t', 'X-Request-Id': 'r-1' } } },
        context_extensions: { required_workspace: 'ws-1' },
      },
    });
    const parts = decodeCheckRequest(wire);
    assert.equal(parts.method, 'GET');
    assert.equal(parts.path, '/api/workflows?limit=5');
    assert.equal(parts.query, 'limit=5');
    assert.equal(parts.sourceAddress, '10.1.2.3');
    assert.equal(parts.headers.get('authorization'), 'Bearer t');
    assert.equal(parts.headers.get('x-request-id'), 'r-1');
    assert.deepEqual(parts.contextExtensions, { required_workspace: 'ws-1' });
    assert.deepEqual(decodeCheckRequest(Buffer.alloc(0)), { method: undefined, path: undefined, query: undefined, headers: new Map(), sourceAddress: undefined, contextExtensions: undefined });
  });

  test('header names across requests: the decoder remembers names it saw, and never hands back the wrong one', () => {
    // Thousands of names of the same few lengths over a small alphabet collide in the decoder's
    // 256 name slots all the time; every request must still read exactly as proto-loader reads it.
    const next = rng(4242);
    const letters = 'abAB-é:x';
    const randomName = (): string => Array.from({ length: 1 + Math.floor(next() * 4) }, () => letters[Math.floor(next() * letters.length)]).join('');
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const headers: Record<string, string> = {};
      for (let k = Math.floor(next() * 8); k > 0; k--) {
        const n = randomName();
        seen.add(n);
        headers[n] = `v${k}`;
      }
      const wire = method.requestSerialize({ attributes: { request: { http: { headers } } } });
      assert.deepEqual(decodeCheckRequest(wire), viaProtoLoader(wire), `request ${i}: ${JSON.stringify(headers)}`);
    }
    assert.ok(seen.size > 1000, `only ${seen.size} distinct names: too few to collide`);
  });

  test('a request over 16 KiB (a forwarded body) reads the same: its strings are sliced one by one', () => {
    const next = rng(16);
    for (let i = 0; i < 50; i++) {
      const req = randomRequest(next) as { attributes: { request: { http: Record<string, unknown> } } };
      Object.assign(req.attributes.request.http, { body: 'b'.repeat(17_000 + i), headers: { ...(req.attributes.request.http.headers as object), authorization: 'Bearer short', 'x-é': 'ü' } });
      const wire = method.requestSerialize(req);
      assert.ok(wire.length > 16 * 1024);
      assert.deepEqual(decodeCheckRequest(wire), viaProtoLoader(wire), `request ${i}`);
    }
  });

  test('damaged bytes (truncated, flipped, overlong lengths) throw an Error or decode; never hang or return garbage types', () => {
    const next = rng(99);
    let threw = 0;
    for (let i = 0; i < 3000; i++) {
      const wire = Buffer.from(method.requestSerialize(randomRequest(next)));
      const damaged = next() < 0.5 ? wire.subarray(0, Math.floor(next() * wire.length)) : wire;
      for (let k = 0; k < 3 && damaged.length > 0; k++) damaged[Math.floor(next() * damaged.length)] = Math.floor(next() * 256);
      try {
        const parts = decodeCheckRequest(damaged);
        assert.ok(parts.headers instanceof Map);
        for (const [k, v] of parts.headers) assert.ok(typeof k === 'string' && typeof v === 'string');
        for (const f of ['method', 'path', 'query', 'sourceAddress'] as const) assert.ok(parts[f] === undefined || typeof parts[f] === 'string');
      } catch (err) {
        assert.ok(err instanceof Error, `request ${i} threw a non-Error`);
        threw++;
      }
    }
    assert.ok(threw > 0, 'some damaged requests must have been refused');
  });
});

describe('a damaged frame through a real server', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'optional' });
  });
  after(() => t?.stop());

  const call = (body: Buffer): Promise<string | undefined> =>
    new Promise((resolve, reject) => {
      const s = connect(`http://127.0.0.1:${t.app.grpcPort}`);
      s.on('error', reject);
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(body.length, 1);
      const req = s.request({ ':method': 'POST', ':path': `/${AUTHZ_V3}/Check`, 'content-type': 'application/grpc', te: 'trailers' });
      let status: string | undefined;
      req.on('trailers', (h) => (status = h['grpc-status'] as string | undefined));
      req.on('response', (h) => (status ??= h['grpc-status'] as string | undefined));
      req.on('data', () => undefined);
      req.on('end', () => {
        s.close();
        resolve(status);
      });
      req.on('error', reject);
      req.end(Buffer.concat([prefix, body]));
    });

  test('answers INTERNAL (13) for bytes that are not a CheckRequest, then OK for a good one', async () => {
    // Field 1 (attributes), length 200, but only 3 bytes follow.
    assert.equal(await call(Buffer.from([0x0a, 0xc8, 0x01, 1, 2, 3])), '13');
    const good = method.requestSerialize({ attributes: { request: { http: { method: 'GET', path: '/api/x', headers: {} } } } });
    assert.equal(await call(good), '0');
  });
});
