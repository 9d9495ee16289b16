/** Key fetching details: URL redaction, Cache-Control parsing, credentials, size cap, and what gets logged. */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { createJwtAuthenticator } from '../src/authn/jwt';
import { parseMaxAge, redactUrl } from '../src/authn/jwt/fetch';
import { epochSeconds, jwksOf, jwtOptions, makeKey, manualClock, sign, startJwksServer, type JwksServer, type TestKey } from './helpers/jwks-server';

describe('redactUrl', () => {
  it('drops userinfo, query and fragment', () => {
    assert.equal(redactUrl('https://u:p@idp.example/jwks?key=abc#x'), 'https://idp.example/jwks');
    assert.equal(redactUrl('http://127.0.0.1:8080/.well-known/jwks.json'), 'http://127.0.0.1:8080/.well-known/jwks.json');
    assert.equal(redactUrl('not a url'), '<invalid url>');
  });
});

describe('parseMaxAge', () => {
  const cases: Array<[string | null, number | undefined]> = [
    [null, undefined],
    ['', undefined],
    ['public, max-age=600', 600],
    ['max-age="120", must-revalidate', 120],
    ['MAX-AGE=30', 30],
    ['s-maxage=99', undefined],
    ['private', undefined],
    ['no-store', 0],
    ['no-cache, max-age=600', 0],
  ];
  for (const [header, expected] of cases) it(String(header), () => assert.equal(parseMaxAge(header), expected));
});

describe('fetching and logging', () => {
  let server: JwksServer;
  let key: TestKey;
  const SECRET = 'logging-test-hmac-secret-do-not-log-me-0123456789';
  const lines: string[] = [];
  const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });

  before(async () => {
    key = await makeKey('RS256', 'log-1');
    server = await startJwksServer(jwksOf(key));
  });
  after(() => server.close());

  it('credentials in the JWKS URL go out as Basic auth and are never logged; tokens and secret neither', async () => {
    const clock = manualClock();
    const url = new URL(server.jwksUrl);
    url.username = 'svc';
    url.password = 'pw-do-not-log';
    url.search = '?api_key=QUERY-DO-NOT-LOG';
    const a = createJwtAuthenticator(jwtOptions({ jwksUrl: url.toString(), secret: SECRET, audiences: ['api'] }), { logger, now: clock.now })!;
    await a.ready();
    assert.equal(server.lastRequest()?.authorization, `Basic ${Buffer.from('svc:pw-do-not-log').toString('base64')}`);
    assert.equal(server.lastRequest()?.url, '/jwks?api_key=QUERY-DO-NOT-LOG');

    const exp = epochSeconds(clock.now()) + 600;
    const tokens = [
      await sign({ sub: 'u', aud: 'api', exp }, key),
      await sign({ sub: 'u', aud: 'wrong', exp }, key),
      await sign({ sub: 'u', aud: 'api', exp }, { alg: 'HS256', secret: SECRET }),
      await sign({ sub: 'u', aud: 'api', exp: exp - 3600 }, { alg: 'HS256', secret: SECRET }),
      await sign({ sub: 'u', aud: 'api', exp }, { alg: 'HS256', secret: 'forged-forged-forged-forged-forged' }),
    ];
    for (const t of tokens) await a.authenticate(t, clock.now());
    server.setDown('status');
    clock.advance(31_000);
    await a.authenticate(await sign({ sub: 'u', aud: 'api', exp }, key, { kid: 'unknown' }), clock.now());
    server.setDown(false);
    a.close();

    const log = lines.join('');
    assert.match(log, /"msg":"jwks fetched"/);
    assert.match(log, /"msg":"jwks fetch failed"/);
    assert.match(log, /"msg":"jwt rejected"/);
    assert.ok(log.includes(`"url":"${server.jwksUrl}"`), 'URL logged without credentials or query');
    for (const forbidden of ['pw-do-not-log', 'QUERY-DO-NOT-LOG', SECRET, ...tokens, ...tokens.map((t) => t.split('.')[2]!)]) {
      assert.ok(!log.includes(forbidden), `log leaked ${forbidden.slice(0, 20)}…`);
    }
  });

  it('a key set response over 1 MiB is refused', async () => {
    server.setKeys({ keys: [key.publicJwk], padding: 'x'.repeat(1_100_000) } as unknown as { keys: unknown[] });
    const a = createJwtAuthenticator(jwtOptions({ jwksUrl: server.jwksUrl }), { logger: pino({ level: 'silent' }) })!;
    await a.ready();
    assert.equal(a.stats().jwksFetchFailures, 1);
    a.close();
    server.setKeys(jwksOf(key));
  });

  it('an unreachable provider (nothing listening) fails the fetch without throwing', async () => {
    const a = createJwtAuthenticator(jwtOptions({ jwksUrl: 'http://127.0.0.1:1/jwks' }), { logger: pino({ level: 'silent' }) })!;
    await a.ready();
    assert.equal(a.stats().jwksFetchFailures, 1);
    const r = await a.authenticate(await sign({ sub: 'u' }, key), Date.now());
    assert.equal(r.kind === 'rejected' && r.error.code, 'auth.key_unavailable');
    a.close();
  });
});
