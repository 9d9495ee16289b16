import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { AUTHZ_V2 } from '../src/grpc/descriptors';
import { startTestApp, type TestApp } from './helpers/app';
import { AuthzClient, checkRequest, deniedBody, deniedStatus, okHeaders } from './helpers/grpc-client';

const BOOT = 'bootstrap-secret-for-tests-0123456789';

describe('malformed CheckRequests never crash the service', () => {
  let req: TestApp;
  let opt: TestApp;
  before(async () => {
    req = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, 'auto');
    opt = await startTestApp({ ORCHEO_AUTH_MODE: 'optional' }, 'auto');
  });
  after(async () => {
    await req?.stop();
    await opt?.stop();
  });

  const shapes: Array<[string, unknown]> = [
    ['empty request', {}],
    ['no http', { attributes: { request: {} } }],
    ['no request', { attributes: { source: {} } }],
    ['null-ish fields', { attributes: { request: { http: { method: '', path: '', headers: {} } }, context_extensions: {} } }],
  ];
  for (const [name, body] of shapes) {
    test(`${name}: 401 when required, anonymous allow when optional`, async () => {
      const r = await req.client.raw(body);
      assert.equal(deniedStatus(r), 401);
      assert.equal(deniedBody(r).code, 'auth.missing_token');
      const o = await opt.client.raw(body);
      assert.equal(okHeaders(o)['x-orcheo-authenticated'], 'false');
    });
  }

  test('empty, huge and non-ASCII header values', async () => {
    const big = 'x'.repeat(1024 * 1024);
    const r1 = await req.client.check({ headers: { authorization: `Bearer ${big}` } });
    assert.equal(deniedBody(r1).code, 'auth.invalid_token', '1 MB authorization header');
    const r2 = await req.client.check({ headers: { authorization: '' } });
    assert.equal(deniedBody(r2).code, 'auth.missing_token');
    const r3 = await req.client.check({ headers: { authorization: 'Bearer tökén-ü-日本' } });
    assert.equal(deniedBody(r3).code, 'auth.invalid_token');
    const r4 = await req.client.check({ path: '/api/%zz/%%/\u0000', headers: { 'x-big': big, authorization: `Bearer ${BOOT}` } });
    assert.equal(deniedBody(r4).code, 'auth.invalid_request', 'a NUL in the path is 400, even with a valid token');
    const r4b = await req.client.check({ path: '/api/%zz/%%', headers: { 'x-big': big, authorization: `Bearer ${BOOT}` } });
    assert.equal(okHeaders(r4b)['x-orcheo-subject'], 'bootstrap', 'malformed escapes alone are not refused');
    const r5 = await req.client.check({ headers: { authorization: 'Bearer a.b.c' } });
    assert.equal(deniedBody(r5).code, 'auth.invalid_token', 'JWT-shaped garbage with no JWT source configured');
  });

  test('header_map form (encode_raw_headers) with raw_value bytes', async () => {
    const body = checkRequest({});
    const http = (body.attributes as { request: { http: Record<string, unknown> } }).request.http;
    delete http.headers;
    http.header_map = { headers: [{ key: 'Authorization', raw_value: Buffer.from(`Bearer ${BOOT}`) }, { key: 'x-orcheo-subject', value: 'evil' }] };
    const r = await req.client.raw(body);
    assert.equal(okHeaders(r)['x-orcheo-subject'], 'bootstrap');
  });

  test('random bytes as the gRPC message body get a gRPC error, and the server keeps answering', async () => {
    const grpc = await import('@grpc/grpc-js');
    const client = new grpc.Client(`127.0.0.1:${req.app.grpcPort}`, grpc.credentials.createInsecure());
    const call = (bytes: Buffer) =>
      new Promise<{ err: { code?: number } | null; res?: Buffer }>((resolve) => {
        client.makeUnaryRequest('/envoy.service.auth.v3.Authorization/Check', (b: Buffer) => b, (b: Buffer) => b, bytes, (err, res) => resolve({ err, res }));
      });
    const answers: string[] = [];
    for (const bytes of [Buffer.from([0xff, 0xff, 0xff]), Buffer.from('not a protobuf at all'), Buffer.alloc(0)]) {
      const { err, res } = await call(bytes);
      answers.push(err ? `error ${grpc.status[err.code ?? -1]}` : `response ${res?.length ? 'bytes' : 'empty'}`);
    }
    // Undecodable bytes are a gRPC error (never UNAVAILABLE, never a hang); an empty message is a
    // valid, empty CheckRequest, answered with a deny.
    assert.deepEqual(answers, ['error INTERNAL', 'error INTERNAL', 'response bytes']);
    client.close();
    assert.equal(deniedStatus(await req.client.check({})), 401, 'still serving');
  });

  test('the v2 service answers with the same handler', async () => {
    const v2 = new AuthzClient(req.app.grpcPort, AUTHZ_V2);
    try {
      assert.equal(okHeaders(await v2.check({ headers: { authorization: `Bearer ${BOOT}` } }))['x-orcheo-subject'], 'bootstrap');
      assert.equal(deniedStatus(await v2.check({})), 401);
    } finally {
      v2.close();
    }
  });
});
