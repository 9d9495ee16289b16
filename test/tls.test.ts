import assert from 'node:assert/strict';
import { request } from 'node:https';
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { startTestApp } from './helpers/app';
import { createTestPki } from './helpers/certs';
import { AuthzClient, deniedStatus, okHeaders } from './helpers/grpc-client';

const BOOT = 'bootstrap-secret-for-tests-0123456789';

function httpsGet(port: number, ca: Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', ca, servername: 'localhost', agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The serial of the certificate a TLS server presents right now (a new connection each time). */
function servedSerial(port: number, ca: Buffer, cert?: Buffer, key?: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, cert, key, servername: 'localhost', ALPNProtocols: ['h2', 'http/1.1'] }, () => {
      const serial = new X509Certificate(s.getPeerX509Certificate()!.raw).serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on('error', reject);
  });
}

test('TLS and mTLS on the gRPC listener, TLS on HTTP, certificates reloaded when they change', async () => {
  const pki = createTestPki();
  const t = await startTestApp(
    {
      ORCHEO_AUTH_MODE: 'required',
      ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN: BOOT,
      ORCHEO_AUTH_GRPC_TLS_CERT: pki.serverCert,
      ORCHEO_AUTH_GRPC_TLS_KEY: pki.serverKey,
      ORCHEO_AUTH_GRPC_TLS_CLIENT_CA: pki.caCert,
      ORCHEO_AUTH_HTTP_TLS_CERT: pki.serverCert,
      ORCHEO_AUTH_HTTP_TLS_KEY: pki.serverKey,
    },
    'auto',
    undefined,
    { tlsClient: { ca: pki.read(pki.caCert), cert: pki.read(pki.clientCert), key: pki.read(pki.clientKey) } },
  );
  const ca = pki.read(pki.caCert);
  const noCert = new AuthzClient(t.app.grpcPort, undefined, grpc.credentials.createSsl(ca));
  const plain = new AuthzClient(t.app.grpcPort);
  try {
    const ok = await t.client.check({ headers: { authorization: `Bearer ${BOOT}` } });
    assert.equal(okHeaders(ok)['x-orcheo-subject'], 'bootstrap', 'mTLS client with a certificate');
    assert.equal(deniedStatus(await t.client.check({})), 401);
    await assert.rejects(noCert.check({}), (err: { code?: number }) => err.code === grpc.status.UNAVAILABLE, 'a client without a certificate is refused');
    await assert.rejects(plain.check({}), (err: { code?: number }) => err.code === grpc.status.UNAVAILABLE, 'plaintext is refused');

    const h = await httpsGet(t.app.httpPort, ca);
    assert.equal(h.status, 200);
    assert.deepEqual(JSON.parse(h.body), { status: 'ok' });

    const before = await servedSerial(t.app.grpcPort, ca, pki.read(pki.clientCert), pki.read(pki.clientKey));
    const renewed = pki.renewServer();
    assert.notEqual(renewed.toUpperCase(), before.toUpperCase());
    let grpcSerial = before;
    let httpSerial = await servedSerial(t.app.httpPort, ca);
    for (let i = 0; i < 100 && (grpcSerial.toUpperCase() !== renewed.toUpperCase() || httpSerial.toUpperCase() !== renewed.toUpperCase()); i++) {
      await new Promise((r) => setTimeout(r, 100));
      grpcSerial = await servedSerial(t.app.grpcPort, ca, pki.read(pki.clientCert), pki.read(pki.clientKey));
      httpSerial = await servedSerial(t.app.httpPort, ca);
    }
    assert.equal(grpcSerial.toUpperCase(), renewed.toUpperCase(), 'gRPC serves the renewed certificate');
    assert.equal(httpSerial.toUpperCase(), renewed.toUpperCase(), 'HTTP serves the renewed certificate');
  } finally {
    noCert.close();
    plain.close();
    await t.stop();
    pki.cleanup();
  }
});
