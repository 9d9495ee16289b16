import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createRateLimiter } from '../src/ratelimit';
import { clusterKeyPrefix, SLIDING_LOG_LUA } from '../src/ratelimit/redis';
import { RedisServerProcess, untilBackend } from './helpers/redis-server';

test('redis+cluster:// URL: one script over IP and identity keys works under CROSSSLOT rules', async (t) => {
  if (!RedisServerProcess.available()) return t.skip('redis-server binary not found on PATH');
  const server = await RedisServerProcess.start({ cluster: true });
  t.after(() => server.destroy());
  const node = server.nodeClient();
  t.after(() => node.disconnect());

  // The check is meaningful: without a shared hash tag the same script is refused by a cluster node.
  await assert.rejects(node.eval(SLIDING_LOG_LUA, 2, 'rl:ip:192.0.2.1', 'rl:id:alice', 60000, 'n', 5, '1', 5, '1'), /CROSSSLOT/);

  const l = createRateLimiter({ redisUrl: server.url, keyPrefix: 'orcheo-authz:rl:', intervalSeconds: 60, failClosed: true, logger: pino({ level: 'silent' }) });
  t.after(() => l.close());
  await untilBackend(l, 'redis');
  const q = [
    { key: 'ip:192.0.2.1', limit: 2, failed: true },
    { key: 'id:alice', limit: 5, failed: true },
  ];
  assert.deepEqual((await l.evaluate(q)).map((v) => v.blocked), [false, false]);
  assert.equal(l.backend(), 'redis');
  assert.deepEqual((await l.evaluate(q)).map((v) => v.blocked), [false, false]);
  assert.deepEqual(await l.evaluate(q), [{ blocked: true, retryAfterSeconds: 60 }, { blocked: false, retryAfterSeconds: 0 }]);
  const tag = clusterKeyPrefix('orcheo-authz:rl:');
  assert.equal(await node.zcard(`${tag}ip:192.0.2.1`), 2);
  assert.equal(await node.zcard(`${tag}id:alice`), 2);
  assert.equal(await node.call('CLUSTER', 'KEYSLOT', `${tag}ip:192.0.2.1`), await node.call('CLUSTER', 'KEYSLOT', `${tag}id:alice`));
});
