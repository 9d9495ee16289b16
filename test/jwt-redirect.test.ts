import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { fetchJson } from '../src/authn/jwt/fetch';

test('a JWKS or discovery fetch never follows a redirect (no SSRF through the provider)', async () => {
  let internalHits = 0;
  const internal = createServer((_req, res) => {
    internalHits += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
  });
  await new Promise<void>((r) => internal.listen(0, '127.0.0.2', r));
  const target = `http://127.0.0.2:${(internal.address() as AddressInfo).port}/latest/meta-data`;
  const provider = createServer((_req, res) => res.writeHead(302, { location: target }).end());
  await new Promise<void>((r) => provider.listen(0, '127.0.0.1', r));
  try {
    const url = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/jwks`;
    await assert.rejects(fetchJson(url, 2000), /failed/);
    assert.equal(internalHits, 0, 'the redirect target was requested');
  } finally {
    provider.close();
    internal.close();
  }
});
