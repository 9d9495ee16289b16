/**
 * Deploy gaps around monitoring and the shared tier: the ServiceMonitor / PodMonitor scrape ports that
 * exist, the cert-manager Issuer orcheo-ca exists for the Certificates, the shared-tier NetworkPolicy
 * admits exactly the ports the pods listen on, and ConfigMap names do not collide between layouts.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { allContainers, isAuthzContainer, listRepoFiles, loadK8sObjects, loadYaml, podSpecOf, readRepoFile, repoPath, type K8sObject } from './helpers/envoy-schema';

const sidecar = loadK8sObjects('deploy/k8s/sidecar');
const shared = loadK8sObjects('deploy/k8s/shared-tier');
const monitors = loadK8sObjects('deploy/monitoring').filter((o) => o.__file.endsWith('service-monitor.yaml'));

const matches = (selector: Record<string, string>, labels: Record<string, string> | undefined): boolean =>
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);

function containerPorts(objs: K8sObject[]): Array<{ name: string; containerPort: number }> {
  return objs.flatMap((o) => allContainers(podSpecOf(o)).filter(isAuthzContainer).flatMap((c: any) => c.ports ?? []));
}

describe('monitoring and shared-tier manifests', () => {
  it('the ServiceMonitor selects the shared-tier Service and scrapes a port it has, as job orcheo-authz', () => {
    const sm = monitors.find((o) => o.kind === 'ServiceMonitor')!;
    const services = shared.filter((o) => o.kind === 'Service' && matches(sm['spec'].selector.matchLabels, o.metadata.labels));
    const port = sm['spec'].endpoints[0].port;
    const withPort = services.filter((s) => s['spec'].ports.some((p: any) => p.name === port));
    assert.equal(withPort.length, 1, 'exactly one Service exposes the scrape port (each pod scraped once)');
    const target = withPort[0]!['spec'].ports.find((p: any) => p.name === port).targetPort;
    assert.ok(containerPorts(shared).some((p) => p.name === target && p.containerPort === 8181), `targetPort ${target} is not the 8181 metrics port`);
    assert.deepEqual(sm['spec'].endpoints[0].relabelings, [{ targetLabel: 'job', replacement: 'orcheo-authz' }]);
  });

  it('the PodMonitor selects the sidecar pods and scrapes the orcheo-authz HTTP port', () => {
    const pm = monitors.find((o) => o.kind === 'PodMonitor')!;
    const dep = sidecar.find((o) => o.kind === 'Deployment')!;
    assert.ok(matches(pm['spec'].selector.matchLabels, dep['spec'].template.metadata.labels));
    const port = pm['spec'].podMetricsEndpoints[0].port;
    assert.ok(containerPorts(sidecar).some((p) => p.name === port && p.containerPort === 8181), `${port} is not the orcheo-authz 8181 port`);
  });

  it('every Issuer the Certificates reference is shipped, and orcheo-ca is a CA issuer', () => {
    const issuers = new Map(shared.filter((o) => o.kind === 'Issuer').map((o) => [o.metadata.name, o]));
    for (const c of shared.filter((o) => o.kind === 'Certificate')) {
      assert.equal(c['spec'].issuerRef.kind, 'Issuer');
      assert.ok(issuers.has(c['spec'].issuerRef.name), `${c.metadata.name}: Issuer ${c['spec'].issuerRef.name} missing`);
    }
    const ca = issuers.get('orcheo-ca')!;
    const caCert = shared.find((o) => o.kind === 'Certificate' && o['spec'].secretName === ca['spec'].ca.secretName)!;
    assert.equal(caCert['spec'].isCA, true);
  });

  it('the shared-tier NetworkPolicy admits gRPC from labelled clients and 8181 only from monitoring/admin pods', () => {
    const np = shared.find((o) => o.kind === 'NetworkPolicy')!;
    const dep = shared.find((o) => o.kind === 'Deployment')!;
    assert.ok(matches(np['spec'].podSelector.matchLabels, dep['spec'].template.metadata.labels));
    const ports = new Set(containerPorts(shared).map((p) => p.containerPort));
    for (const rule of np['spec'].ingress) {
      assert.ok(rule.from?.length > 0, 'every rule names its sources (no rule open to all)');
      for (const p of rule.ports) assert.ok(ports.has(p.port), `port ${p.port} is not a container port`);
    }
    assert.deepEqual(np['spec'].ingress.flatMap((r: any) => r.ports.map((p: any) => p.port)).sort(), [8181, 9191]);
  });

  it('ConfigMap names are unique across the sidecar and shared-tier layouts', () => {
    const names = [...sidecar, ...shared].filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name);
    assert.deepEqual(names.filter((n, i) => names.indexOf(n) !== i), []);
    for (const o of [...sidecar, ...shared]) {
      for (const v of podSpecOf(o)?.volumes ?? []) {
        if (v.configMap) assert.ok(names.includes(v.configMap.name), `${o.__file}: ConfigMap ${v.configMap.name} not shipped`);
      }
    }
  });

  for (const dir of ['deploy/k8s/sidecar', 'deploy/k8s/shared-tier', 'deploy/k8s/shared-tier-app', 'deploy/k8s/dev']) {
    it(`${dir}/kustomization.yaml lists every manifest of the folder, each existing`, () => {
      const k = loadYaml(`${dir}/kustomization.yaml`);
      assert.equal(k.kind, 'Kustomization');
      const files = listRepoFiles(dir, ['.yaml', '.yml']).map((f) => f.slice(dir.length + 1)).filter((f) => f !== 'kustomization.yaml');
      assert.deepEqual([...k.resources].sort(), files);
    });

    const kubectl = '/usr/bin/kubectl';
    it(`kubectl kustomize ${dir} builds`, { skip: fs.existsSync(kubectl) ? undefined : `${kubectl} not installed` }, () => {
      const r = spawnSync(kubectl, ['kustomize', repoPath(dir)], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      const built = r.stdout.split(/^---$/m).length;
      assert.equal(built, loadK8sObjects(dir).filter((o) => o.kind !== 'Kustomization').length, 'one built object per manifest object');
    });
  }

  it('the dev-only Postgres and Redis say so, in a comment and a label', () => {
    const files = listRepoFiles('deploy/k8s/dev', ['.yaml']);
    assert.ok(files.length >= 3);
    for (const f of files) assert.match(fs.readFileSync(repoPath(f), 'utf8'), /^# DEV \/ TEST CLUSTERS ONLY/, f);
    for (const o of loadK8sObjects('deploy/k8s/dev').filter((x) => x.kind !== 'Kustomization')) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'orcheo-dev', `${o.__file}: ${o.kind}/${o.metadata.name}`);
    }
  });

  it('the Istio overlay starts without cert-manager: no TLS variables, no TLS Secret mount, no cert-manager objects', {
    skip: fs.existsSync('/usr/bin/kubectl') ? undefined : '/usr/bin/kubectl not installed',
  }, () => {
    const r = spawnSync('/usr/bin/kubectl', ['kustomize', repoPath('deploy/istio')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const objs = parseAllDocuments(r.stdout).map((d) => d.toJS() as K8sObject);
    assert.deepEqual(objs.filter((o) => o.apiVersion.startsWith('cert-manager.io/')).map((o) => o.metadata.name), []);
    const dep = objs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'orcheo-authz')!;
    const pod = podSpecOf(dep);
    const authz = allContainers(pod).find(isAuthzContainer);
    assert.deepEqual(authz.env.map((e: any) => e.name).filter((n: string) => n.startsWith('ORCHEO_AUTH_GRPC_TLS')), []);
    const secretVolumes = pod.volumes.filter((v: any) => v.secret).map((v: any) => v.secret.secretName);
    assert.deepEqual(secretVolumes, [], 'a Secret volume nothing creates keeps the pod in ContainerCreating');
    assert.ok(authz.volumeMounts.every((m: any) => pod.volumes.some((v: any) => v.name === m.name)), 'every mount has its volume');
    assert.ok(objs.some((o) => o.kind === 'AuthorizationPolicy'));
  });

  it('the shared-tier example app mounts the client TLS Secret where envoy-shared-tier.yaml reads it, and may reach Check', () => {
    const objs = loadK8sObjects('deploy/k8s/shared-tier-app');
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    const pod = podSpecOf(dep);
    const envoy = allContainers(pod).find((c: any) => c.name === 'envoy');
    const mountOf = (file: string): any => envoy.volumeMounts.find((m: any) => file.startsWith(`${m.mountPath}/`));
    const files = [...readRepoFile('deploy/envoy/envoy-shared-tier.yaml').matchAll(/filename: (\S+) \}/g)].map((m) => m[1]!);
    assert.ok(files.length >= 3, files.join(', '));
    for (const f of files) {
      const vol = pod.volumes.find((v: any) => v.name === mountOf(f)?.name);
      assert.equal(vol?.secret?.secretName, 'orcheo-authz-client-tls', `${f} is not on the client TLS Secret`);
    }
    const cfgPath: string = envoy.args[envoy.args.indexOf('-c') + 1];
    assert.ok(pod.volumes.find((v: any) => v.name === mountOf(cfgPath)?.name)?.configMap, `${cfgPath} is not on a ConfigMap`);
    const np = shared.find((o) => o.kind === 'NetworkPolicy')!;
    const grpcRule = np['spec'].ingress.find((r: any) => r.ports.some((p: any) => p.port === 9191));
    assert.ok(grpcRule.from.some((f: any) => f.podSelector && matches(f.podSelector.matchLabels, dep['spec'].template.metadata.labels)));
  });
});
