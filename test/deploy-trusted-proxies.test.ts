/**
 * Deployment files: ORCHEO_AUTH_TRUSTED_PROXIES names exactly the proxy that forwards to the admin
 * API in each shipped setup, parsed by the real config loader and matched by the real resolver.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../src/config/load';
import { trustedProxies } from '../src/ratelimit/client-ip';
import { allContainers, isAuthzContainer, loadK8sObjects, loadYaml, podSpecOf } from './helpers/envoy-schema';

function proxiesOf(value: string | undefined): ReturnType<typeof trustedProxies> {
  assert.notEqual(value, undefined, 'ORCHEO_AUTH_TRUSTED_PROXIES is set');
  return trustedProxies(loadConfig({ ORCHEO_AUTH_TRUSTED_PROXIES: value!, ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://' }).trustedProxies);
}

function k8sAuthzEnv(dir: string): Map<string, string> {
  const env = new Map<string, string>();
  for (const obj of loadK8sObjects(dir)) {
    const spec = podSpecOf(obj);
    for (const c of spec ? allContainers(spec) : []) if (isAuthzContainer(c)) for (const e of c.env ?? []) if (e.value !== undefined) env.set(e.name, String(e.value));
  }
  return env;
}

test('compose: Envoy has a fixed address and is the only trusted proxy', () => {
  const compose = loadYaml('docker-compose.yml');
  const envoyIp: string = compose.services.envoy.networks.default.ipv4_address;
  const subnet: string = compose.networks.default.ipam.config[0].subnet;
  const p = proxiesOf(compose.services['orcheo-authz'].environment.ORCHEO_AUTH_TRUSTED_PROXIES);
  assert.ok(p.has(envoyIp), `Envoy ${envoyIp} trusted`);
  assert.ok(trustedProxies([subnet]).has(envoyIp), `Envoy ${envoyIp} inside the network ${subnet}`);
  // the bridge gateway (how host callers of 127.0.0.1:8181 appear) and other containers are not trusted
  const base = subnet.split('/')[0]!.split('.').slice(0, 3).join('.');
  for (const other of [`${base}.1`, `${base}.2`, `${base}.11`]) assert.ok(!p.has(other), other);
});

test('Kubernetes sidecar: the pod-local Envoy (loopback) is trusted; shared tier: no proxy at all', () => {
  const sidecar = proxiesOf(k8sAuthzEnv('deploy/k8s/sidecar').get('ORCHEO_AUTH_TRUSTED_PROXIES'));
  assert.ok(sidecar.has('127.0.0.1') && sidecar.has('::1'));
  assert.ok(!sidecar.has('10.0.0.5'), 'another pod is not trusted');
  const shared = proxiesOf(k8sAuthzEnv('deploy/k8s/shared-tier').get('ORCHEO_AUTH_TRUSTED_PROXIES') ?? '');
  assert.ok(!shared.has('127.0.0.1') && !shared.has('10.0.0.5'));
});
