import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { tracingEnabled } from '../src/pipeline/tracing';
import { startTestApp } from './helpers/app';

const BOOT = 'bootstrap-secret-for-tests-0123456789';

// The tracer provider and propagator are process-wide: the next file in this process starts without them.
after(() => {
  trace.disable();
  propagation.disable();
});

test('tracing is off (and Check unwrapped) without an SDK; with one, Check spans join the request trace', async () => {
  assert.equal(tracingEnabled(), false, 'no tracer provider registered yet');

  const exporter = new InMemorySpanExporter();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  assert.equal(tracingEnabled(), true);

  const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, 'auto');
  try {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    await t.client.check({ headers: { authorization: `Bearer ${BOOT}`, traceparent: `00-${traceId}-00f067aa0ba902b7-01` } });
    await t.client.check({ headers: { authorization: 'Bearer wrong' } });
    const spans = exporter.getFinishedSpans().filter((s) => s.name.endsWith('Authorization/Check'));
    assert.equal(spans.length, 2);
    assert.equal(spans[0]!.spanContext().traceId, traceId, 'continues the trace of the proxied request');
    assert.equal(spans[0]!.attributes['orcheo_authz.decision'], 'allow');
    assert.equal(spans[1]!.attributes['orcheo_authz.decision'], 'deny');
    assert.equal(spans[1]!.attributes['orcheo_authz.code'], 'auth.invalid_token');
    assert.equal(spans[1]!.attributes['http.response.status_code'], 401);
    const all = JSON.stringify(spans.map((s) => s.attributes));
    assert.ok(!all.includes(BOOT) && !all.includes('wrong'), 'no credential in span attributes');
  } finally {
    await t.stop();
  }
});

test('traceparent is read from header_map too (Envoy encode_raw_headers)', async () => {
  const exporter = new InMemorySpanExporter();
  trace.disable();
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  const t = await startTestApp({ ORCHEO_AUTH_MODE: 'required', ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT }, 'auto');
  try {
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    const raw = (headers: Array<{ key: string; raw_value: Buffer }>) => ({
      attributes: { request: { http: { method: 'GET', path: '/api/workflows', header_map: { headers } } } },
    });
    const res = await t.client.raw(raw([
      { key: 'authorization', raw_value: Buffer.from(`Bearer ${BOOT}`) },
      { key: 'traceparent', raw_value: Buffer.from(`00-${traceId}-b7ad6b7169203331-01`) },
    ]));
    assert.ok(res.ok_response);
    const spans = exporter.getFinishedSpans().filter((s) => s.name.endsWith('Authorization/Check'));
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.spanContext().traceId, traceId, 'continues the trace named in header_map');
  } finally {
    await t.stop();
  }
});
