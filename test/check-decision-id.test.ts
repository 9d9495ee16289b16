/**
 * Decision ids through the real gRPC server: every CheckResponse carries `decision_id` in its
 * dynamic_metadata and every deny body `request_id` — Envoy's `x-request-id` when usable, else a
 * generated id — and the cached parts of a response never carry one request's id into another's.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApp, type TestApp } from './helpers/app';
import { deniedBody, okHeaders, type CheckResult } from './helpers/grpc-client';

const BOOT = 'bootstrap-secret-for-decision-id-tests-0123';
const decisionIdOf = (r: CheckResult): string | undefined => r.dynamic_metadata?.fields['decision_id']?.stringValue;
const requestIdOf = (r: CheckResult): unknown => (deniedBody(r) as { request_id?: unknown }).request_id;

describe('decision ids on the wire', () => {
  let t: TestApp;
  before(async () => {
    t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, 'auto');
  });
  after(() => t?.stop());

  test("allows carry the request's x-request-id as decision_id, each its own", async () => {
    for (const id of ['req-a', 'req-b', 'req-a']) {
      const r = await t.client.check({ path: '/api/workflows', headers: { authorization: `Bearer ${BOOT}`, 'x-request-id': id } });
      assert.equal(okHeaders(r)['x-orcheo-subject'], 'bootstrap');
      assert.equal(decisionIdOf(r), id);
      assert.equal(r.dynamic_metadata?.fields['subject']?.stringValue, 'bootstrap', 'the identity metadata is still there');
    }
  });

  test('denies carry the id in the body and the metadata; without x-request-id each gets a fresh one', async () => {
    const given = await t.client.check({ path: '/api/workflows', headers: { 'x-request-id': 'deny-1' } });
    assert.equal(deniedBody(given).code, 'auth.missing_token');
    assert.equal(requestIdOf(given), 'deny-1');
    assert.equal(decisionIdOf(given), 'deny-1');
    assert.equal(given.dynamic_metadata?.fields['code']?.stringValue, 'auth.missing_token');

    const a = await t.client.check({ path: '/api/workflows', headers: { authorization: 'Bearer nope' } });
    const b = await t.client.check({ path: '/api/workflows', headers: { authorization: 'Bearer nope' } });
    for (const r of [a, b]) {
      assert.equal(deniedBody(r).code, 'auth.invalid_token');
      assert.equal(typeof requestIdOf(r), 'string');
      assert.equal(requestIdOf(r), decisionIdOf(r));
    }
    assert.notEqual(decisionIdOf(a), decisionIdOf(b), 'generated ids differ per request');
  });

  test('an unusable x-request-id (too long, not printable) is replaced, never echoed', async () => {
    for (const bad of ['x'.repeat(129), 'has space']) {
      const r = await t.client.check({ path: '/api/workflows', headers: { 'x-request-id': bad } });
      const id = decisionIdOf(r);
      assert.ok(id && id !== bad && id.length <= 128, `id ${id}`);
      assert.equal(requestIdOf(r), id);
    }
  });
});
