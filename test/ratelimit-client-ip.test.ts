import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isIP } from 'node:net';
import fc from 'fast-check';
import { normalizeIp, resolveClientIp } from '../src/ratelimit';

const SRC = '10.1.2.3';

test('trustedHops=0 ignores x-forwarded-for entirely (forgeable)', () => {
  assert.equal(resolveClientIp(SRC, '203.0.113.7', 0), SRC);
  assert.equal(resolveClientIp(SRC, '203.0.113.7, 198.51.100.1', 0), SRC);
  assert.equal(resolveClientIp(SRC, undefined, 0), SRC);
});

test('trustedHops=N picks the Nth entry from the right (express "trust proxy N")', () => {
  const xff = '198.51.100.1, 198.51.100.2, 198.51.100.3';
  assert.equal(resolveClientIp(SRC, xff, 1), '198.51.100.3');
  assert.equal(resolveClientIp(SRC, xff, 2), '198.51.100.2');
  assert.equal(resolveClientIp(SRC, xff, 3), '198.51.100.1');
  // chain shorter than the hops: the leftmost entry
  assert.equal(resolveClientIp(SRC, xff, 4), '198.51.100.1');
  assert.equal(resolveClientIp(SRC, xff, 1000), '198.51.100.1');
  assert.equal(resolveClientIp(SRC, '198.51.100.9', 2), '198.51.100.9');
  // no header, or a blank one: the source address
  assert.equal(resolveClientIp(SRC, undefined, 2), SRC);
  assert.equal(resolveClientIp(SRC, '', 2), SRC);
  assert.equal(resolveClientIp(SRC, '   ', 1), SRC);
});

test('a forged prefix cannot choose the key: only trusted hops count from the right', () => {
  // the client sent "x-forwarded-for: 1.1.1.1"; one trusted proxy appended the real peer
  assert.equal(resolveClientIp(SRC, '1.1.1.1, 203.0.113.50', 1), '203.0.113.50');
  // the client stuffed many entries; still the rightmost one with one hop
  assert.equal(resolveClientIp(SRC, `${'9.9.9.9, '.repeat(10_000)}203.0.113.50`, 1), '203.0.113.50');
});

test('malformed chosen entry falls back to the source address', () => {
  for (const bad of ['garbage', 'unknown', '1.2.3', '256.1.1.1', '01.2.3.4', '1.2.3.4:99999', '<script>', '::ffff::1', '1.2.3.4 5.6.7.8', '[1.2.3.4]']) {
    assert.equal(resolveClientIp(SRC, `198.51.100.1, ${bad}`, 1), SRC, bad);
  }
  assert.equal(resolveClientIp(SRC, '198.51.100.1,,', 1), SRC); // empty entry
  assert.equal(resolveClientIp(SRC, ',198.51.100.1', 3), SRC); // leftmost entry is empty
  // only the chosen entry must parse: a garbage entry further left is irrelevant
  assert.equal(resolveClientIp(SRC, 'garbage, 198.51.100.1', 1), '198.51.100.1');
});

test('ports, brackets and whitespace are stripped; IPv6 is canonical; IPv4-mapped becomes IPv4', () => {
  assert.equal(resolveClientIp(SRC, ' 203.0.113.7:8080 ', 1), '203.0.113.7');
  assert.equal(resolveClientIp(SRC, '[2001:DB8::1]:443', 1), '2001:db8::1');
  assert.equal(resolveClientIp(SRC, '[2001:db8::1]', 1), '2001:db8::1');
  assert.equal(resolveClientIp(SRC, '2001:0DB8:0000:0000:0000:0000:0000:0001', 1), '2001:db8::1');
  assert.equal(resolveClientIp(SRC, '::FFFF:203.0.113.9', 1), '203.0.113.9');
  assert.equal(resolveClientIp(SRC, '::ffff:cb00:7109', 1), '203.0.113.9');
  assert.equal(resolveClientIp('::ffff:10.1.2.3', undefined, 0), SRC);
  assert.equal(resolveClientIp('0:0:0:0:0:0:0:1', undefined, 0), '::1');
  assert.equal(resolveClientIp('fe80::1%eth0', undefined, 0), 'fe80::1');
  assert.equal(resolveClientIp(`${SRC}:51234`, undefined, 0), SRC);
  assert.equal(normalizeIp('2001:db8::1:80'), '2001:db8::1:80'); // a valid IPv6 address, not a port
});

test('missing or unparseable source gives "unknown"', () => {
  assert.equal(resolveClientIp(undefined, undefined, 0), 'unknown');
  assert.equal(resolveClientIp('', '203.0.113.7', 1), 'unknown');
  assert.equal(resolveClientIp('/run/envoy.sock', '203.0.113.7', 1), 'unknown');
  assert.equal(resolveClientIp(SRC, '203.0.113.7', Number.NaN), SRC);
  assert.equal(resolveClientIp(SRC, '203.0.113.7', -1), SRC);
});

/**
 * An independent model of the documented rule (not normalizeIp): an address with an optional port
 * (`v4:port`, `[v6]:port`), IPv6 in RFC 5952 form as the WHATWG URL serializer writes it, an
 * IPv4-mapped IPv6 address as the IPv4 one.
 */
function canonical(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let s = raw.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(s);
  const v4port = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(s);
  const port = bracketed?.[2] ?? v4port?.[2];
  if (port !== undefined && Number(port) > 65535) return undefined;
  if (bracketed) s = bracketed[1]!;
  else if (v4port) s = v4port[1]!;
  if (!bracketed && isIP(s) === 4) return s;
  if (isIP(s) !== 6) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!mapped) return host;
  const [hi, lo] = [parseInt(mapped[1]!, 16), parseInt(mapped[2]!, 16)];
  return [hi >> 8, hi & 255, lo >> 8, lo & 255].join('.');
}

/** [source, xff entries right to left]: the entry at index hops, or the leftmost; a malformed choice is the source. */
function expectedClientIp(src: string | undefined, xff: string | undefined, hops: number): string {
  const source = canonical(src);
  if (source === undefined) return 'unknown';
  if (!(hops > 0) || xff === undefined) return source;
  const chain = [src!, ...xff.split(',').reverse()];
  return canonical(chain[Math.min(Math.floor(hops), chain.length - 1)]) ?? source;
}

/** The same address: IPv4 text as is, IPv6 compared in the URL serializer's RFC 5952 form (the key's notation is free). */
function sameAddress(a: string, b: string): boolean {
  if (isIP(a) === 4 || isIP(b) === 4) return a === b;
  return isIP(a) === 6 && isIP(b) === 6 && new URL(`http://[${a}]/`).hostname === new URL(`http://[${b}]/`).hostname;
}

test('one key per address, whatever its notation; a key is its own key', () => {
  const keys = ['::1:0', '::0.1.0.0', '0:0:0:0:0:0:1:0', '[::1:0]:443'].map((a) => resolveClientIp(a, undefined, 0));
  assert.equal(new Set(keys).size, 1, JSON.stringify(keys));
  assert.equal(resolveClientIp(keys[0], undefined, 0), keys[0]);
});

test('property: matches an independent model of the hop rule; never throws', () => {
  const ipV6 = fc.ipV6();
  const entry = fc.oneof(fc.ipV4(), ipV6, fc.string(), fc.ipV4().map((ip) => `${ip}:${80}`), ipV6.map((ip) => `[${ip}]:443`), fc.ipV4().map((ip) => `::ffff:${ip}`));
  fc.assert(
    fc.property(fc.option(entry), fc.option(fc.array(entry).map((a) => a.join(', '))), fc.integer({ min: -2, max: 8 }), (src, xff, hops) => {
      const ip = resolveClientIp(src ?? undefined, xff ?? undefined, hops);
      const want = expectedClientIp(src ?? undefined, xff ?? undefined, hops);
      assert.ok(ip === want || (ip !== 'unknown' && want !== 'unknown' && sameAddress(ip, want)), `${ip} for source ${src}, xff ${xff}, hops ${hops}: expected ${want}`);
      if (ip !== 'unknown') assert.equal(resolveClientIp(ip, undefined, 0), ip, 'a key is its own key');
    }),
    { numRuns: 5000 },
  );
});

test('the model and the service agree on hand-picked canonical forms', () => {
  for (const [raw, want] of [['2001:DB8:0:0:0:0:0:1', '2001:db8::1'], ['[::1]:8080', '::1'], ['::ffff:192.0.2.1', '192.0.2.1'], ['192.0.2.1:443', '192.0.2.1'], ['[192.0.2.1]:443', undefined], ['1.2.3.4:70000', undefined]] as const) {
    assert.equal(canonical(raw), want, `model: ${raw}`);
    assert.equal(resolveClientIp(raw, undefined, 0), want ?? 'unknown', `service: ${raw}`);
  }
});

test('HTTP side: x-forwarded-for is read only when the TCP peer is a trusted proxy', async () => {
  const { resolveHttpClientIp, trustedProxies } = await import('../src/ratelimit/client-ip');
  const none = trustedProxies([]);
  const local = trustedProxies(['127.0.0.1/32', '10.0.0.0/8']);
  // untrusted peer: the header is ignored whatever the hop count
  for (const hops of [0, 1, 5]) assert.equal(resolveHttpClientIp('192.0.2.9', '203.0.113.7', none, hops), '192.0.2.9');
  assert.equal(resolveHttpClientIp('192.0.2.9', '203.0.113.7', local, 1), '192.0.2.9');
  // trusted peer: hops counted from the right, 0 = the entry that proxy appended
  assert.equal(resolveHttpClientIp('127.0.0.1', '198.51.100.1, 203.0.113.7', local, 0), '203.0.113.7');
  assert.equal(resolveHttpClientIp('10.9.8.7', '198.51.100.1, 203.0.113.7', local, 1), '198.51.100.1');
  assert.equal(resolveHttpClientIp('10.9.8.7', '198.51.100.1, 203.0.113.7', local, 9), '198.51.100.1');
  // IPv4-mapped IPv6 peers match IPv4 rules (and the reverse)
  assert.equal(resolveHttpClientIp('::ffff:127.0.0.1', '203.0.113.7', local, 0), '203.0.113.7');
  assert.equal(resolveHttpClientIp('127.0.0.1', '203.0.113.7', trustedProxies(['::ffff:127.0.0.0/104']), 0), '203.0.113.7');
  assert.equal(resolveHttpClientIp('::1', '203.0.113.7', trustedProxies(['::1/128']), 0), '203.0.113.7');
  assert.equal(resolveHttpClientIp('::1', '203.0.113.7', local, 0), '::1');
  // a malformed chosen entry, no header, or no peer
  assert.equal(resolveHttpClientIp('127.0.0.1', 'garbage', local, 0), '127.0.0.1');
  assert.equal(resolveHttpClientIp('127.0.0.1', undefined, local, 0), '127.0.0.1');
  assert.equal(resolveHttpClientIp(undefined, '203.0.113.7', local, 0), 'unknown');
});
