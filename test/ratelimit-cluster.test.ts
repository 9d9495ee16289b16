import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { createRateLimiter } from '../src/ratelimit';
import { clusterKeyPrefix, SLIDING_LOG_LUA } from '../src/ratelimit/redis';
import { RedisServerProcess, redisServerSkipReason, untilBackend } from './helpers/redis-server';
import { loadConfig } from '../src/config/load';

test('redis+cluster:// URL: one script over IP and identity keys works under CROSSSLOT rules', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
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

test('a real 3-node Redis Cluster from a redis+cluster://a:1,b:2,c:3 URL that the configuration accepts', async (t) => {
  const skip = redisServerSkipReason();
  if (skip) return t.skip(skip);
  const cluster = await RedisServerProcess.startCluster(3);
  t.after(() => cluster.destroy());
  // Before the fix loadConfig refused this URL ("is not a valid URL"), although the client supports it.
  const cfg = loadConfig({ ORCHEO_AUTH_REDIS_URL: cluster.url });
  assert.equal(cfg.redisUrl, cluster.url);
  const prefix = `orcheo-authz-test:cluster3:${process.pid}:`;
  const l = createRateLimiter({ redisUrl: cfg.redisUrl!, keyPrefix: prefix, intervalSeconds: 60, failClosed: true, logger: pino({ level: 'silent' }) });
  t.after(() => l.close());
  await untilBackend(l, 'redis');
  const q = [{ key: 'ip:192.0.2.9', limit: 1, failed: true }];
  assert.deepEqual((await l.evaluate(q)).map((v) => v.blocked), [false]);
  assert.deepEqual((await l.evaluate(q)).map((v) => v.blocked), [true]);
  // The window lives on whichever node owns the tag's slot: exactly one of the three holds it.
  const key = `${clusterKeyPrefix(prefix)}ip:192.0.2.9`;
  let holders = 0;
  for (const node of cluster.nodes) {
    const c = node.nodeClient();
    try {
      const owner = (await c.call('CLUSTER', 'COUNTKEYSINSLOT', String(await c.call('CLUSTER', 'KEYSLOT', key)))) as number;
      holders += owner > 0 ? 1 : 0;
    } finally {
      c.disconnect();
    }
  }
  assert.equal(holders, 1);
});
