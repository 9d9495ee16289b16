import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createRateLimiter, redactRedisUrl } from '../src/ratelimit';
import { clusterKeyPrefix } from '../src/ratelimit/redis';
import { parseClusterUrl } from '../src/ratelimit/redis-url';

test('redactRedisUrl hides passwords, keeps users and hosts', () => {
  assert.equal(redactRedisUrl('redis://:s3cret@redis:6379/0'), 'redis://:***@redis:6379/0');
  assert.equal(redactRedisUrl('rediss://app:s3cret@redis:6380'), 'rediss://app:***@redis:6380');
  assert.equal(redactRedisUrl('redis://s3cret@redis'), 'redis://:***@redis');
  assert.equal(redactRedisUrl('redis://:p@ss/w@rd@redis:6379'), 'redis://:***@redis:6379');
  assert.equal(redactRedisUrl('redis+cluster://u:pw@a:7000,b:7001'), 'redis+cluster://u:***@a:7000,b:7001');
  assert.equal(redactRedisUrl('redis://redis:6379'), 'redis://redis:6379');
});

test('parseClusterUrl: nodes, default port, IPv6, credentials, TLS', () => {
  assert.deepEqual(parseClusterUrl('redis+cluster://10.0.0.1:7000,10.0.0.2,[::1]:7002'), {
    nodes: [{ host: '10.0.0.1', port: 7000 }, { host: '10.0.0.2', port: 6379 }, { host: '::1', port: 7002 }],
    username: undefined, password: undefined, tls: false,
  });
  const p = parseClusterUrl('rediss+cluster://app:p%40ss@r1:7000,r2:7000/');
  assert.equal(p.tls, true);
  assert.equal(p.username, 'app');
  assert.equal(p.password, 'p@ss');
  assert.throws(() => parseClusterUrl('redis+cluster://:pw@bad host:1'), (e: Error) => !e.message.includes('pw'));
});

test('keys of one call share a Cluster hash slot', () => {
  assert.equal(clusterKeyPrefix('orcheo-authz:rl:'), '{orcheo-authz:rl}:');
  assert.equal(clusterKeyPrefix('app'), '{app}:');
  assert.equal(clusterKeyPrefix(''), '{orcheo-authz:rl}:');
  assert.equal(clusterKeyPrefix('{tenant-a}:rl:'), '{tenant-a}:rl:'); // an explicit tag is kept
});

test('unsupported URL schemes are rejected without echoing the password', () => {
  const logger = pino({ level: 'silent' });
  assert.throws(
    () => createRateLimiter({ redisUrl: 'http://:topsecret@redis', intervalSeconds: 60, failClosed: false, logger }),
    (e: Error) => /unsupported Redis URL/.test(e.message) && !e.message.includes('topsecret'),
  );
});
