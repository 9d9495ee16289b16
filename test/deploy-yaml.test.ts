/**
 * Deployment files, part 1: every YAML file under deploy/ and docker-compose.yml parses cleanly, the
 * Kubernetes manifests have the expected shape, and the Dockerfile / .dockerignore follow the brief.
 */
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { closedPort } from './helpers/spawn';
import { describe, it } from 'node:test';
import {
  allContainers,
  deployYamlFiles,
  isAuthzContainer,
  loadK8sObjects,
  loadYaml,
  parseYamlFile,
  parseYamlText,
  podSpecOf,
  readRepoFile,
  repoPath,
} from './helpers/envoy-schema';

describe('deploy YAML files parse', () => {
  const files = deployYamlFiles();

  it('covers compose, Envoy, policy, Kubernetes and Istio files', () => {
    for (const expected of [
      'docker-compose.yml',
      'deploy/envoy/envoy.yaml',
      'deploy/envoy/envoy-shared-tier.yaml',
      'deploy/policy/policy.yaml',
      'deploy/istio/mesh-config.yaml',
      'deploy/istio/authorization-policy.yaml',
    ]) {
      assert.ok(files.includes(expected), `${expected} missing from ${files.join(', ')}`);
    }
    assert.ok(files.filter((f) => f.startsWith('deploy/k8s/sidecar/')).length >= 4);
    assert.ok(files.filter((f) => f.startsWith('deploy/k8s/shared-tier/')).length >= 4);
  });

  for (const rel of files) {
    it(`${rel}: no YAML errors, warnings or YAML-1.1 ambiguities`, () => {
      const p = parseYamlFile(rel);
      assert.deepEqual(p.problems, []);
      assert.ok(p.docs.length >= 1, 'no document');
      for (const d of p.docs) assert.equal(typeof d, 'object', 'every document is a mapping');
    });
  }

  it('embedded YAML in ConfigMaps parses too', () => {
    let count = 0;
    for (const obj of loadK8sObjects('deploy/k8s')) {
      if (obj.kind !== 'ConfigMap') continue;
      for (const [key, text] of Object.entries<string>(obj['data'] ?? {})) {
        if (!/\.ya?ml$/.test(key)) continue;
        count++;
        assert.deepEqual(parseYamlText(text, `${obj.__file}#${key}`).problems, []);
      }
    }
    assert.ok(count >= 3, `expected the envoy and policy ConfigMaps, found ${count} embedded YAML files`);
  });

  it('the checker rejects broken YAML (duplicate keys, bad indentation, unquoted yes/ports)', () => {
    assert.notDeepEqual(parseYamlText('a: 1\na: 2\n').problems, []);
    assert.notDeepEqual(parseYamlText('a:\n  b: 1\n c: 2\n').problems, []);
    assert.notDeepEqual(parseYamlText('enabled: yes\n').problems, []);
    assert.notDeepEqual(parseYamlText('ports:\n  - 8080:80\n').problems, []);
    assert.notDeepEqual(parseYamlText('ports:\n  - 22:22\n').problems, []);
    assert.notDeepEqual(parseYamlText('mode: 0440\n').problems, []);
    assert.notDeepEqual(parseYamlText('x: !custom 1\n').problems, []);
    assert.deepEqual(parseYamlText('ports:\n  - "8080:80"\nmode: 288\n').problems, []);
  });
});

describe('Kubernetes manifests', () => {
  // istiod-values.yaml is Helm values, not a Kubernetes object.
  const objects = [...loadK8sObjects('deploy/k8s'), ...loadK8sObjects('deploy/istio').filter((o) => !o.__file.endsWith('istiod-values.yaml'))];

  it('every object has apiVersion, kind and metadata.name', () => {
    assert.ok(objects.length >= 10);
    for (const o of objects) {
      assert.equal(typeof o.apiVersion, 'string', `${o.__file}: apiVersion`);
      assert.equal(typeof o.kind, 'string', `${o.__file}: kind`);
      assert.match(o.metadata?.name ?? '', /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${o.__file}: metadata.name`);
    }
  });

  it('no two objects of one kind share a name within a layout', () => {
    for (const dir of ['deploy/k8s/sidecar', 'deploy/k8s/shared-tier']) {
      const seen = new Set<string>();
      for (const o of loadK8sObjects(dir)) {
        const key = `${o.kind}/${o.metadata.name}`;
        assert.ok(!seen.has(key), `${dir}: duplicate ${key}`);
        seen.add(key);
      }
    }
  });

  it('workloads run non-root with read-only root filesystems and resource requests', () => {
    let checked = 0;
    for (const o of objects) {
      const pod = podSpecOf(o);
      if (!pod) continue;
      assert.equal(pod.securityContext?.runAsNonRoot, true, `${o.__file}: pod runAsNonRoot`);
      assert.equal(pod.automountServiceAccountToken, false, `${o.__file}: automountServiceAccountToken`);
      for (const c of allContainers(pod)) {
        const where = `${o.__file}: container ${c.name}`;
        assert.ok(c.resources?.requests?.cpu && c.resources?.requests?.memory, `${where}: resources.requests`);
        assert.ok(c.resources?.limits?.memory, `${where}: memory limit`);
        assert.equal(c.securityContext?.allowPrivilegeEscalation, false, `${where}: allowPrivilegeEscalation`);
        assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], `${where}: capabilities`);
        const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
        assert.ok(typeof uid === 'number' && uid > 0, `${where}: numeric non-root runAsUser`);
        if (c.name !== 'app') assert.equal(c.securityContext?.readOnlyRootFilesystem, true, `${where}: readOnlyRootFilesystem`);
        checked++;
      }
    }
    assert.ok(checked >= 4, `checked ${checked} containers`);
  });

  it('the orcheo-authz containers have readiness and liveness probes', () => {
    let found = 0;
    for (const o of objects) {
      for (const c of allContainers(podSpecOf(o)).filter(isAuthzContainer)) {
        found++;
        assert.ok(c.readinessProbe, `${o.__file}: readinessProbe`);
        assert.ok(c.livenessProbe, `${o.__file}: livenessProbe`);
      }
    }
    assert.equal(found, 2, 'one orcheo-authz container in the sidecar and one in the shared tier');
  });

  it('the sidecar uses a native gRPC probe on the Authorization health service', () => {
    const dep = loadK8sObjects('deploy/k8s/sidecar').find((o) => o.kind === 'Deployment');
    const authz = allContainers(podSpecOf(dep!)).find(isAuthzContainer);
    assert.equal(authz.readinessProbe.grpc?.service, 'envoy.service.auth.v3.Authorization');
    assert.equal(allContainers(podSpecOf(dep!)).length, 3, 'app, envoy, orcheo-authz');
  });

  it('shared tier: HPA autoscaling/v2, PDB policy/v1, TLS Secret with cert-manager key names', () => {
    const objs = loadK8sObjects('deploy/k8s/shared-tier');
    const hpa = objs.find((o) => o.kind === 'HorizontalPodAutoscaler');
    assert.equal(hpa?.apiVersion, 'autoscaling/v2');
    assert.ok(hpa!['spec'].minReplicas >= 2);
    assert.equal(objs.find((o) => o.kind === 'PodDisruptionBudget')?.apiVersion, 'policy/v1');
    const dep = objs.find((o) => o.kind === 'Deployment')!;
    const pod = podSpecOf(dep);
    const c = allContainers(pod).find(isAuthzContainer);
    const env = new Map<string, string>(c.env.map((e: any) => [e.name, e.value]));
    const tlsMount = c.volumeMounts.find((m: any) => m.name === 'tls');
    assert.ok(tlsMount, 'tls volume mounted');
    assert.equal(env.get('ORCHEO_AUTH_GRPC_TLS_CERT'), `${tlsMount.mountPath}/tls.crt`);
    assert.equal(env.get('ORCHEO_AUTH_GRPC_TLS_KEY'), `${tlsMount.mountPath}/tls.key`);
    assert.equal(env.get('ORCHEO_AUTH_GRPC_TLS_CLIENT_CA'), `${tlsMount.mountPath}/ca.crt`);
    const vol = pod.volumes.find((v: any) => v.name === 'tls');
    const cert = objs.find((o) => o.kind === 'Certificate' && o['spec'].secretName === vol.secret.secretName);
    assert.ok(cert, `a cert-manager Certificate writes the Secret ${vol.secret.secretName}`);
  });
});

describe('Dockerfile and .dockerignore', () => {
  const dockerfile = readRepoFile('deploy/Dockerfile');
  // Join continuation lines and drop comments.
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: { from: string; lines: string[] }[] = [];
  const args = new Map<string, string>();
  for (const l of lines) {
    const m = /^FROM\s+(\S+)/i.exec(l);
    if (m) stages.push({ from: (m[1] as string).replace(/\$\{(\w+)\}/g, (_s, n: string) => args.get(n) ?? ''), lines: [] });
    else if (stages.length) stages[stages.length - 1]!.lines.push(l);
    else {
      const a = /^ARG\s+(\w+)=(\S+)/i.exec(l);
      if (a) args.set(a[1] as string, a[2] as string);
    }
  }
  const final = stages[stages.length - 1]!;
  const all = (re: RegExp): string[] => final.lines.filter((l) => re.test(l));

  it('is multi-stage: a build stage runs npm ci + npm run build, the runtime installs production deps only', () => {
    assert.ok(stages.length >= 2, 'multi-stage');
    const build = stages.find((s) => s.lines.some((l) => /npm run build/.test(l)));
    assert.ok(build, 'a stage runs npm run build');
    assert.ok(build.lines.some((l) => /^RUN npm ci(\s|$)/.test(l) && !/--omit=dev/.test(l)), 'build stage installs devDependencies');
    assert.ok(stages.some((s) => s.lines.some((l) => /npm ci .*--omit=dev/.test(l))), 'production install with --omit=dev');
    assert.match(final.from, /^(node:20(-[a-z]+)?-slim|gcr\.io\/distroless\/nodejs20)/, `runtime base ${final.from}`);
    assert.ok(final.lines.some((l) => /^COPY --from=\S+ .*dist/.test(l)), 'runtime copies dist/ from the build stage');
    const fromContext = final.lines.filter((l) => /^COPY\s/i.test(l) && !/--from=/.test(l));
    assert.ok(!fromContext.some((l) => /\bsrc\b/.test(l)), 'runtime does not ship TypeScript sources');
  });

  it('runs as a numeric non-root user', () => {
    const users = all(/^USER\s/i);
    assert.equal(users.length >= 1, true, 'USER set in the runtime stage');
    const user = (users[users.length - 1] as string).split(/\s+/)[1] as string;
    assert.match(user, /^\d+(:\d+)?$/, 'numeric uid (Kubernetes runAsNonRoot can verify it)');
    assert.notEqual(user.split(':')[0], '0');
  });

  it('exposes 9191, 8181 and 9192 and starts `node dist/src/main.js serve`', () => {
    const exposed = all(/^EXPOSE\s/i).flatMap((l) => l.split(/\s+/).slice(1));
    assert.deepEqual(exposed.sort(), ['8181', '9191', '9192']);
    const entry = JSON.parse(all(/^ENTRYPOINT\s/i)[0]!.replace(/^ENTRYPOINT\s+/i, ''));
    const cmd = JSON.parse(all(/^CMD\s/i)[0]!.replace(/^CMD\s+/i, ''));
    assert.deepEqual([...entry, ...cmd], ['node', 'dist/src/main.js', 'serve']);
  });

  const healthcheck = (): string[] => {
    const l = all(/^HEALTHCHECK\s/i)[0];
    assert.ok(l, 'HEALTHCHECK present');
    const json = l.slice(l.indexOf('CMD') + 3).trim();
    const cmd = JSON.parse(json) as string[];
    assert.equal(cmd[0], 'node', 'healthcheck uses node (no curl in the slim image)');
    return cmd;
  };

  /** Runs the HEALTHCHECK command with ORCHEO_AUTH_HTTP_ADDR = addr(port) (unset when addr returns undefined). */
  const runCmd = (addr: string | undefined): Promise<number | null> => {
    const env = { ...process.env };
    delete env.ORCHEO_AUTH_HTTP_ADDR;
    if (addr !== undefined) env.ORCHEO_AUTH_HTTP_ADDR = addr;
    return new Promise((resolve) => spawn(process.execPath, healthcheck().slice(1), { env, stdio: 'ignore' }).on('exit', (code) => resolve(code)));
  };

  /** Runs the HEALTHCHECK command against a local HTTP server answering /healthz with `status`. */
  async function runHealthcheck(status: number, opts: { port?: number; addr?: (port: number) => string | undefined } = {}): Promise<{ code: number | null; paths: string[] }> {
    const paths: string[] = [];
    const server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(opts.port ?? 0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      return { code: await runCmd((opts.addr ?? ((p) => `0.0.0.0:${p}`))(port)), paths };
    } finally {
      server.close();
    }
  }

  it('HEALTHCHECK hits /healthz on the HTTP port and reflects its status', async () => {
    const ok = await runHealthcheck(200);
    assert.equal(ok.code, 0);
    assert.deepEqual(ok.paths, ['/healthz']);
    const bad = await runHealthcheck(503);
    assert.equal(bad.code, 1);
  });

  it('HEALTHCHECK defaults to port 8181 (variable unset, or an address without a port)', async (t) => {
    for (const addr of [() => undefined, () => '0.0.0.0:']) {
      let r: { code: number | null; paths: string[] };
      try {
        r = await runHealthcheck(200, { port: 8181, addr });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return t.skip('port 8181 is in use on this machine');
        throw err;
      }
      assert.equal(r.code, 0, `ORCHEO_AUTH_HTTP_ADDR=${addr() ?? '(unset)'}`);
      assert.deepEqual(r.paths, ['/healthz']);
    }
  });

  it('HEALTHCHECK fails, not hangs, when nothing listens on the port', async () => {
    const port = await closedPort();
    assert.equal(await runCmd(`127.0.0.1:${port}`), 1);
  });

  it('.dockerignore keeps secrets, local builds and node_modules out of the context', () => {
    const ignore = fs.readFileSync(repoPath('.dockerignore'), 'utf8').split('\n').map((l) => l.trim());
    for (const entry of ['node_modules', 'dist', '.git', '.env']) assert.ok(ignore.includes(entry), `.dockerignore lacks ${entry}`);
    for (const needed of ['src', 'proto', 'package.json', 'package-lock.json', 'tsconfig.json']) {
      assert.ok(!ignore.includes(needed), `.dockerignore must not exclude ${needed}`);
    }
    for (const l of lines.filter((x) => /^COPY\s/i.test(x) && !/--from=/.test(x))) {
      for (const src of l.split(/\s+/).slice(1, -1).filter((s) => !s.startsWith('--'))) {
        assert.ok(fs.existsSync(repoPath(src)), `COPY source ${src} exists`);
      }
    }
  });

  it('compose builds this Dockerfile from the repository root', () => {
    const compose = loadYaml('docker-compose.yml');
    const svc = compose.services['orcheo-authz'];
    assert.equal(svc.build.context, '.');
    assert.equal(svc.build.dockerfile, 'deploy/Dockerfile');
    assert.ok(fs.existsSync(repoPath(svc.build.dockerfile)));
  });
});
