/**
 * Deployment files, part 4: ports and names agree across files. The Envoy authz cluster points at the
 * port orcheo-authz listens on (ORCHEO_AUTH_GRPC_ADDR, default 9191), probes and Service targetPorts
 * resolve to container ports, the Istio provider uses 9191, and the compose upstream port is the
 * Envoy upstream cluster port.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  allContainers,
  clusterByName,
  clusterEndpoints,
  envoyConfigSources,
  hostOfAddr,
  httpConnectionManagers,
  isAuthzContainer,
  listeners,
  loadK8sObjects,
  loadYaml,
  podSpecOf,
  portOfAddr,
  type K8sObject,
} from './helpers/envoy-schema';

const DEFAULT_GRPC_PORT = 9191;
const DEFAULT_HTTP_PORT = 8181;

/** The cluster the ext_authz filter calls. */
function authzCluster(cfg: any): any {
  const ea = httpConnectionManagers(cfg)[0]!.hcm.http_filters[0].typed_config;
  return clusterByName(cfg, ea.grpc_service.envoy_grpc.cluster_name);
}

/** The cluster of the catch-all route (the protected application). */
function upstreamCluster(cfg: any): any {
  const routes = httpConnectionManagers(cfg)[0]!.hcm.route_config.virtual_hosts[0].routes;
  return clusterByName(cfg, routes.find((r: any) => r.match.prefix === '/').route.cluster);
}

function routeClusterFor(cfg: any, prefix: string): any | undefined {
  const routes = httpConnectionManagers(cfg)[0]!.hcm.route_config.virtual_hosts[0].routes;
  const r = routes.find((x: any) => x.match.path_separated_prefix === prefix || x.match.prefix === prefix);
  return r ? clusterByName(cfg, r.route.cluster) : undefined;
}

/** Compose "host_ip:host:container[/proto]" (or shorter) -> container port. */
function composeContainerPort(spec: string | number | { target: number }): number {
  if (typeof spec === 'number') return spec;
  if (typeof spec === 'object') return Number(spec.target);
  return Number(spec.split('/')[0]!.split(':').at(-1));
}

/** Resolve a probe / Service port (number or name) against a container's ports. */
function resolvePort(container: any, port: number | string): number | undefined {
  const ports: any[] = container.ports ?? [];
  const p = typeof port === 'number' ? ports.find((x) => x.containerPort === port) : ports.find((x) => x.name === port);
  return p?.containerPort;
}

function probePort(probe: any): number | string | undefined {
  return probe?.grpc?.port ?? probe?.httpGet?.port ?? probe?.tcpSocket?.port;
}

function envOf(container: any): Map<string, string | undefined> {
  return new Map((container.env ?? []).map((e: any) => [e.name, e.value]));
}

/** Problems with probes, Service targetPorts and selectors of one Kubernetes layout. */
function k8sPortProblems(objects: K8sObject[]): string[] {
  const out: string[] = [];
  const workloads = objects.filter((o) => podSpecOf(o));
  for (const w of workloads) {
    for (const c of allContainers(podSpecOf(w))) {
      const env = envOf(c);
      const grpcAddr = env.get('ORCHEO_AUTH_GRPC_ADDR');
      for (const kind of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const probe = c[kind];
        if (!probe) continue;
        const port = probePort(probe);
        const resolved = port === undefined ? undefined : resolvePort(c, port);
        if (resolved === undefined) {
          out.push(`${w.metadata.name}/${c.name} ${kind}: port ${String(port)} is not a port of the container`);
          continue;
        }
        if (probe.grpc && isAuthzContainer(c)) {
          const grpcPort = portOfAddr(grpcAddr) ?? DEFAULT_GRPC_PORT;
          if (resolved !== grpcPort) out.push(`${c.name} ${kind}: gRPC probe on ${resolved}, but gRPC listens on ${grpcPort}`);
          if (grpcAddr && /^(127\.|localhost|\[::1\])/.test(grpcAddr)) out.push(`${c.name} ${kind}: kubelet cannot reach a gRPC server bound to ${grpcAddr}`);
          if (env.get('ORCHEO_AUTH_GRPC_TLS_CERT')) out.push(`${c.name} ${kind}: kubelet gRPC probes cannot speak TLS`);
        }
      }
      if (isAuthzContainer(c)) {
        const grpcPort = portOfAddr(grpcAddr) ?? DEFAULT_GRPC_PORT;
        const httpPort = portOfAddr(env.get('ORCHEO_AUTH_HTTP_ADDR')) ?? DEFAULT_HTTP_PORT;
        const declared = (c.ports ?? []).map((p: any) => p.containerPort);
        if (!declared.includes(grpcPort)) out.push(`${c.name}: containerPort ${grpcPort} (ORCHEO_AUTH_GRPC_ADDR) not declared`);
        if (!declared.includes(httpPort)) out.push(`${c.name}: containerPort ${httpPort} (ORCHEO_AUTH_HTTP_ADDR) not declared`);
      }
    }
  }
  const selects = (selector: Record<string, string> | undefined, w: K8sObject): boolean =>
    !!selector && Object.entries(selector).every(([k, v]) => w['spec'].template.metadata.labels?.[k] === v);
  for (const svc of objects.filter((o) => o.kind === 'Service')) {
    const targets = workloads.filter((w) => selects(svc['spec'].selector, w));
    if (targets.length === 0) {
      out.push(`Service ${svc.metadata.name}: selector matches no workload`);
      continue;
    }
    for (const p of svc['spec'].ports) {
      const tp = p.targetPort ?? p.port;
      for (const w of targets) {
        if (!allContainers(podSpecOf(w)).some((c) => resolvePort(c, tp) !== undefined)) {
          out.push(`Service ${svc.metadata.name} port ${p.name ?? p.port}: targetPort ${tp} is no container port of ${w.metadata.name}`);
        }
      }
    }
  }
  for (const o of objects.filter((x) => x.kind === 'PodDisruptionBudget' || x.kind === 'NetworkPolicy')) {
    const sel = o.kind === 'PodDisruptionBudget' ? o['spec'].selector?.matchLabels : o['spec'].podSelector?.matchLabels;
    const targets = workloads.filter((w) => selects(sel, w));
    if (targets.length === 0) out.push(`${o.kind} ${o.metadata.name}: selector matches no workload`);
    if (o.kind === 'NetworkPolicy') {
      for (const rule of o['spec'].ingress ?? []) {
        for (const p of rule.ports ?? []) {
          if (!targets.some((w) => allContainers(podSpecOf(w)).some((c) => resolvePort(c, p.port) !== undefined))) {
            out.push(`NetworkPolicy ${o.metadata.name}: port ${p.port} is no container port`);
          }
        }
      }
    }
  }
  for (const hpa of objects.filter((o) => o.kind === 'HorizontalPodAutoscaler')) {
    const ref = hpa['spec'].scaleTargetRef;
    if (!workloads.some((w) => w.kind === ref.kind && w.metadata.name === ref.name)) out.push(`HPA ${hpa.metadata.name}: target ${ref.kind}/${ref.name} not found`);
  }
  return out;
}

describe('compose: Envoy, orcheo-authz and the upstream agree on ports', () => {
  const compose = loadYaml('docker-compose.yml');
  const services = compose.services;
  // Which Envoy config compose mounts, and where Envoy is told to read it.
  const envoySvc = services.envoy;
  const configArg = envoySvc.command[envoySvc.command.indexOf('-c') + 1];
  const mount = (envoySvc.volumes as string[]).map((v) => v.split(':')).find(([, target]) => target === configArg);
  const envoy = loadYaml(mount![0]!.replace(/^\.\//, ''));
  const authzEnv = new Map(Object.entries<string>(services['orcheo-authz'].environment));

  it('Envoy reads deploy/envoy/envoy.yaml', () => {
    assert.equal(mount?.[0], './deploy/envoy/envoy.yaml');
  });

  it('the ext_authz cluster targets the orcheo-authz service on its gRPC port', () => {
    const grpcPort = portOfAddr(authzEnv.get('ORCHEO_AUTH_GRPC_ADDR')) ?? DEFAULT_GRPC_PORT;
    assert.equal(grpcPort, 9191);
    assert.deepEqual(clusterEndpoints(authzCluster(envoy)), [{ address: 'orcheo-authz', port: grpcPort }]);
    const published = services['orcheo-authz'].ports.map(composeContainerPort);
    assert.ok(published.includes(grpcPort), 'gRPC port published for grpcurl');
  });

  it('the admin API route targets the orcheo-authz HTTP port', () => {
    const httpPort = portOfAddr(authzEnv.get('ORCHEO_AUTH_HTTP_ADDR')) ?? DEFAULT_HTTP_PORT;
    const cluster = routeClusterFor(envoy, '/api/admin/service-tokens');
    assert.deepEqual(clusterEndpoints(cluster), [{ address: 'orcheo-authz', port: httpPort }]);
    assert.ok(String(services['orcheo-authz'].healthcheck.test.join(' ')).includes(`:${httpPort}/`), 'healthcheck uses the HTTP port');
  });

  it('the upstream cluster is the echo service on its HTTP_PORT', () => {
    const [ep] = clusterEndpoints(upstreamCluster(envoy));
    assert.ok(ep);
    const upstream = services[ep.address];
    assert.ok(upstream, `compose service ${ep.address}`);
    assert.equal(Number(upstream.environment.HTTP_PORT), ep.port);
    assert.ok((upstream.expose ?? []).map(Number).includes(ep.port), 'port exposed');
  });

  it("Envoy's listener and admin ports are the ones compose publishes", () => {
    const published = (envoySvc.ports as string[]).map(composeContainerPort).sort();
    const listenerPorts = listeners(envoy).map((l) => Number(l.address.socket_address.port_value));
    const adminPort = Number(envoy.admin.address.socket_address.port_value);
    assert.deepEqual(published, [...listenerPorts, adminPort].sort());
    for (const p of envoySvc.ports as string[]) assert.match(p, /^127\.0\.0\.1:/, 'published on localhost only');
    assert.ok(String(envoySvc.healthcheck.test.join(' ')).includes(String(adminPort)));
  });
});

describe('Kubernetes sidecar: Envoy, orcheo-authz and the app agree on ports', () => {
  const objects = loadK8sObjects('deploy/k8s/sidecar');
  const dep = objects.find((o) => o.kind === 'Deployment')!;
  const containers = allContainers(podSpecOf(dep));
  const authz = containers.find(isAuthzContainer);
  const envoyC = containers.find((c) => c.name === 'envoy');
  const app = containers.find((c) => c.name === 'app');
  const source = envoyConfigSources().find((s) => s.name.startsWith('deploy/k8s/sidecar/'))!;
  const envoy = source.config;

  it("the pod mounts the validated Envoy ConfigMap where Envoy's -c points", () => {
    const cfgPath: string = envoyC.args[envoyC.args.indexOf('-c') + 1];
    const m = envoyC.volumeMounts.find((vm: any) => cfgPath.startsWith(`${vm.mountPath}/`));
    const vol = podSpecOf(dep).volumes.find((v: any) => v.name === m.name);
    assert.ok(source.name.includes(`#${vol.configMap.name}/${cfgPath.slice(m.mountPath.length + 1)}`), `${source.name} is the mounted config`);
  });

  it('authz cluster = 127.0.0.1:<ORCHEO_AUTH_GRPC_ADDR port>; admin route = HTTP port', () => {
    const env = envOf(authz);
    const grpcPort = portOfAddr(env.get('ORCHEO_AUTH_GRPC_ADDR')) ?? DEFAULT_GRPC_PORT;
    const [ep] = clusterEndpoints(authzCluster(envoy));
    assert.equal(ep?.port, grpcPort);
    assert.equal(ep?.address, '127.0.0.1', 'same pod');
    const host = hostOfAddr(env.get('ORCHEO_AUTH_GRPC_ADDR') ?? '0.0.0.0:9191');
    assert.ok(['0.0.0.0', '127.0.0.1', '::', '::1'].includes(host));
    const httpPort = portOfAddr(env.get('ORCHEO_AUTH_HTTP_ADDR')) ?? DEFAULT_HTTP_PORT;
    assert.equal(clusterEndpoints(routeClusterFor(envoy, '/api/admin/service-tokens'))[0]?.port, httpPort);
  });

  it("the app cluster is the app container's port; the listener is Envoy's container port", () => {
    assert.equal(clusterEndpoints(upstreamCluster(envoy))[0]?.port, app.ports[0].containerPort);
    const listenerPort = Number(listeners(envoy)[0].address.socket_address.port_value);
    assert.equal(resolvePort(envoyC, 'http'), listenerPort);
  });

  it('probes, Service targetPorts, NetworkPolicy ports and selectors resolve', () => {
    assert.deepEqual(k8sPortProblems(objects), []);
  });

  it('only Envoy is reachable from other pods (NetworkPolicy)', () => {
    const np = objects.find((o) => o.kind === 'NetworkPolicy')!;
    const openToAll = np['spec'].ingress.filter((r: any) => !r.from).flatMap((r: any) => r.ports.map((p: any) => p.port));
    assert.deepEqual(openToAll, [Number(listeners(envoy)[0].address.socket_address.port_value)]);
  });

  it('the port checker fails on mismatches', () => {
    const broken = structuredClone(objects);
    const d = broken.find((o) => o.kind === 'Deployment')!;
    const c = allContainers(podSpecOf(d)).find(isAuthzContainer);
    c.readinessProbe.grpc.port = 9192;
    c.env.find((e: any) => e.name === 'ORCHEO_AUTH_GRPC_ADDR').value = '127.0.0.1:9191';
    broken.find((o) => o.kind === 'Service')!['spec'].ports[0].targetPort = 'https';
    const problems = k8sPortProblems(broken).join('\n');
    assert.match(problems, /readinessProbe: port 9192 is not a port of the container/);
    assert.match(problems, /kubelet cannot reach a gRPC server bound to 127\.0\.0\.1:9191/);
    assert.match(problems, /targetPort https is no container port/);
  });
});

describe('Kubernetes shared tier and Istio', () => {
  const objects = loadK8sObjects('deploy/k8s/shared-tier');
  const dep = objects.find((o) => o.kind === 'Deployment')!;
  const authz = allContainers(podSpecOf(dep)).find(isAuthzContainer);
  const grpcPort = portOfAddr(envOf(authz).get('ORCHEO_AUTH_GRPC_ADDR')) ?? DEFAULT_GRPC_PORT;
  const grpcServicePort = (svcName: string): any =>
    objects.find((o) => o.kind === 'Service' && o.metadata.name === svcName)?.['spec'].ports.find((p: any) => resolvePort(authz, p.targetPort) === grpcPort);

  it('probes, Service targetPorts, PDB/HPA targets resolve; no plaintext gRPC probe against TLS', () => {
    assert.deepEqual(k8sPortProblems(objects), []);
    const broken = structuredClone(objects);
    const c = allContainers(podSpecOf(broken.find((o) => o.kind === 'Deployment')!)).find(isAuthzContainer);
    c.readinessProbe = { grpc: { port: grpcPort } };
    broken.find((o) => o.kind === 'HorizontalPodAutoscaler')!['spec'].scaleTargetRef.name = 'orcheo-authz-typo';
    const problems = k8sPortProblems(broken).join('\n');
    assert.match(problems, /kubelet gRPC probes cannot speak TLS/);
    assert.match(problems, /HPA orcheo-authz: target Deployment\/orcheo-authz-typo not found/);
  });

  it("envoy-shared-tier.yaml's authz cluster uses the headless Service's gRPC port", () => {
    const cfg = loadYaml('deploy/envoy/envoy-shared-tier.yaml');
    const [ep] = clusterEndpoints(authzCluster(cfg));
    const svcName = ep!.address.split('.')[0]!;
    const port = grpcServicePort(svcName);
    assert.ok(port, `Service ${svcName} exposes the gRPC port`);
    assert.equal(ep!.port, port.port);
    const headless = objects.find((o) => o.kind === 'Service' && o.metadata.name === svcName)!;
    assert.equal(headless['spec'].clusterIP, 'None', 'headless, so Envoy sees every pod');
  });

  it('the Istio extension provider points at the Service on 9191, and the AuthorizationPolicy uses it', () => {
    const mesh = loadYaml('deploy/istio/mesh-config.yaml');
    const values = loadYaml('deploy/istio/istiod-values.yaml');
    const providers = mesh.spec.meshConfig.extensionProviders;
    assert.deepEqual(values.meshConfig.extensionProviders, providers, 'IstioOperator and Helm values agree');
    const provider = providers.find((p: any) => p.envoyExtAuthzGrpc);
    const g = provider.envoyExtAuthzGrpc;
    // only EnvoyExternalAuthorizationGrpcProvider fields (istio.mesh.v1alpha1)
    for (const k of Object.keys(g)) assert.ok(['service', 'port', 'timeout', 'failOpen', 'statusOnError', 'includeRequestBodyInCheck'].includes(k), `unknown provider field ${k}`);
    assert.equal(g.port, 9191);
    assert.equal(g.port, grpcPort);
    assert.equal(g.failOpen, false);
    assert.match(g.timeout, /^\d+(\.\d+)?s$/);
    const [svcName, ns] = g.service.split('.');
    const port = grpcServicePort(svcName);
    assert.ok(port, `Service ${svcName} exposes ${g.port}`);
    assert.equal(port.port, g.port);
    assert.ok(port.appProtocol === 'grpc' || /^grpc(-|$)/.test(port.name), 'Istio must see the port as gRPC (HTTP/2)');
    const ap = loadYaml('deploy/istio/authorization-policy.yaml');
    assert.equal(ap.kind, 'AuthorizationPolicy');
    assert.equal(ap.spec.action, 'CUSTOM');
    assert.equal(ap.spec.provider.name, provider.name);
    assert.ok(Array.isArray(ap.spec.rules) && ap.spec.rules.length >= 1, 'CUSTOM needs at least one rule');
    assert.equal(ap.metadata.namespace, ns);
  });
});
