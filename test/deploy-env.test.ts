/**
 * Deployment files, part 3: every environment variable the compose file, the Kubernetes manifests,
 * the Dockerfile and deploy/README.md give orcheo-authz is one the service knows (KNOWN_VARIABLES), so
 * a typo fails here instead of being silently ignored at run time. Variables of other images
 * (POSTGRES_*, HTTP_PORT, …) are allowed only on containers that are not orcheo-authz.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KNOWN_VARIABLES } from '../src/config/variables';
import {
  allContainers,
  isAuthzContainer,
  loadK8sObjects,
  loadYaml,
  podSpecOf,
  readRepoFile,
  type K8sObject,
} from './helpers/envoy-schema';

const isOrcheoName = (n: string): boolean => /^ORCHEO_/.test(n);

// ---- compose --------------------------------------------------------------------------------

function composeEnv(svc: any): Map<string, string | null> {
  const env = new Map<string, string | null>();
  const e = svc?.environment;
  if (Array.isArray(e)) {
    for (const item of e) {
      const s = String(item);
      const i = s.indexOf('=');
      env.set(i < 0 ? s : s.slice(0, i), i < 0 ? null : s.slice(i + 1));
    }
  } else if (e && typeof e === 'object') {
    for (const [k, v] of Object.entries(e)) env.set(k, v === null ? null : String(v));
  }
  return env;
}

function isAuthzService(name: string, svc: any): boolean {
  return name === 'orcheo-authz' || /deploy\/Dockerfile$/.test(svc?.build?.dockerfile ?? '') || /(^|\/)orcheo-authz(:|$)/.test(svc?.image ?? '');
}

/** `${VAR}`, `${VAR:-x}`, `${VAR:?msg}`, `$VAR` references in compose text ($$ is an escaped $). */
function composeReferences(text: string): string[] {
  const refs: string[] = [];
  const re = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|\$([A-Za-z_][A-Za-z0-9_]*)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const name = m[1] ?? m[2];
    if (name) refs.push(name);
  }
  return refs;
}

function composeProblems(compose: any, text: string): string[] {
  const out: string[] = [];
  let authz = 0;
  for (const [name, svc] of Object.entries<any>(compose.services ?? {})) {
    const mine = isAuthzService(name, svc);
    if (mine) authz++;
    for (const k of composeEnv(svc).keys()) {
      if ((mine || isOrcheoName(k)) && !KNOWN_VARIABLES.has(k)) out.push(`compose service ${name}: unknown variable ${k}`);
    }
    if (svc.env_file) out.push(`compose service ${name}: env_file hides variable names from this check; use environment`);
  }
  if (authz === 0) out.push('compose: no orcheo-authz service');
  for (const ref of composeReferences(text)) {
    if (isOrcheoName(ref) && !KNOWN_VARIABLES.has(ref)) out.push(`compose: reference to unknown variable \${${ref}}`);
  }
  return out;
}

// ---- Kubernetes -----------------------------------------------------------------------------

function k8sProblems(objects: K8sObject[]): string[] {
  const out: string[] = [];
  const find = (kind: string, name: string): K8sObject | undefined => objects.find((o) => o.kind === kind && o.metadata.name === name);
  const keysOf = (o: K8sObject): string[] => [...Object.keys(o['data'] ?? {}), ...Object.keys(o['stringData'] ?? {})];
  for (const o of objects) {
    const pod = podSpecOf(o);
    if (!pod) continue;
    for (const c of allContainers(pod)) {
      const mine = isAuthzContainer(c);
      const where = `${o.__file}: ${o.kind}/${o.metadata.name} container ${c.name}`;
      const names: string[] = [];
      for (const e of c.env ?? []) {
        names.push(e.name);
        const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
        if (ref) {
          const kind = e.valueFrom.secretKeyRef ? 'Secret' : 'ConfigMap';
          const target = find(kind, ref.name);
          if (!target) out.push(`${where}: ${e.name} refers to ${kind} ${ref.name}, which is not in these manifests`);
          else if (!keysOf(target).includes(ref.key)) out.push(`${where}: ${e.name} refers to missing key ${ref.key} of ${kind} ${ref.name}`);
        }
      }
      for (const from of c.envFrom ?? []) {
        const kind = from.secretRef ? 'Secret' : 'ConfigMap';
        const ref = from.secretRef ?? from.configMapRef;
        const target = find(kind, ref?.name);
        if (!target) out.push(`${where}: envFrom ${kind} ${ref?.name} is not in these manifests`);
        else names.push(...keysOf(target).map((k) => `${from.prefix ?? ''}${k}`));
      }
      for (const n of names) if ((mine || isOrcheoName(n)) && !KNOWN_VARIABLES.has(n)) out.push(`${where}: unknown variable ${n}`);
      // $(VAR) references in command, args and env values must name a variable of the container.
      const texts = [...(c.command ?? []), ...(c.args ?? []), ...(c.env ?? []).map((e: any) => e.value ?? '')];
      for (const t of texts) {
        for (const m of String(t).matchAll(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g)) {
          if (!names.includes(m[1] as string)) out.push(`${where}: $(${m[1]}) is not defined in the container`);
        }
      }
    }
  }
  return out;
}

describe('environment variables in deployment files are known to the service', () => {
  it('KNOWN_VARIABLES holds the contract names this test relies on', () => {
    for (const n of ['ORCHEO_AUTH_GRPC_ADDR', 'ORCHEO_AUTH_HTTP_ADDR', 'ORCHEO_AUTH_MODE', 'ORCHEO_AUTH_POLICY_FILE', 'ORCHEO_AUTH_GRPC_TLS_CLIENT_CA']) {
      assert.ok(KNOWN_VARIABLES.has(n), n);
    }
  });

  it('docker-compose.yml', () => {
    assert.deepEqual(composeProblems(loadYaml('docker-compose.yml'), readRepoFile('docker-compose.yml')), []);
  });

  for (const dir of ['deploy/k8s/sidecar', 'deploy/k8s/shared-tier']) {
    it(dir, () => {
      const objects = loadK8sObjects(dir);
      assert.ok(objects.some((o) => allContainers(podSpecOf(o)).some(isAuthzContainer)), 'has an orcheo-authz container');
      assert.deepEqual(k8sProblems(objects), []);
    });
  }

  it('deploy/Dockerfile ENV and deploy/README.md mention only known ORCHEO_* variables', () => {
    const dockerfile = readRepoFile('deploy/Dockerfile').replace(/\\\n/g, ' ');
    const envNames = dockerfile
      .split('\n')
      .filter((l) => /^\s*ENV\s/.test(l))
      .flatMap((l) => [...l.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)].map((m) => m[1] as string));
    assert.ok(envNames.length > 0);
    for (const n of envNames.filter(isOrcheoName)) assert.ok(KNOWN_VARIABLES.has(n), `Dockerfile ENV ${n}`);
    const readme = readRepoFile('deploy/README.md');
    // `ORCHEO_AUTH_GRPC_TLS_*` in prose is a family of names, not one name: skip wildcards.
    const mentioned = new Set([...readme.matchAll(/\bORCHEO_[A-Z0-9_*]+/g)].map((m) => m[0]).filter((n) => !n.includes('*')));
    assert.ok(mentioned.size >= 5);
    for (const n of mentioned) assert.ok(KNOWN_VARIABLES.has(n), `README mentions unknown variable ${n}`);
  });

  it('the checks fail on a typo (compose environment, ${} reference, k8s env, envFrom key, missing Secret key)', () => {
    const compose = structuredClone(loadYaml('docker-compose.yml'));
    compose.services['orcheo-authz'].environment.ORCHEO_AUTH_MODEE = 'required';
    assert.match(composeProblems(compose, '').join('\n'), /unknown variable ORCHEO_AUTH_MODEE/);

    const compose2 = structuredClone(loadYaml('docker-compose.yml'));
    compose2.services['orcheo-authz'].environment.POSTGRES_PASSWORD = 'x'; // another image's variable, on orcheo-authz
    assert.match(composeProblems(compose2, '').join('\n'), /orcheo-authz: unknown variable POSTGRES_PASSWORD/);
    const compose3 = structuredClone(loadYaml('docker-compose.yml'));
    compose3.services['postgres'].environment.ORCHEO_AUTH_JWKS_URLS = 'x'; // an ORCHEO_ typo on another container
    assert.match(composeProblems(compose3, '').join('\n'), /postgres: unknown variable ORCHEO_AUTH_JWKS_URLS/);
    assert.match(composeProblems(loadYaml('docker-compose.yml'), 'X: ${ORCHEO_AUTH_BOOTSTRAP_TOKEN:?x}').join('\n'), /unknown variable \$\{ORCHEO_AUTH_BOOTSTRAP_TOKEN\}/);
    assert.deepEqual(composeProblems(loadYaml('docker-compose.yml'), 'X: $${ORCHEO_NOT_A_VAR}'), [], '$$ is an escape');

    const objects = structuredClone(loadK8sObjects('deploy/k8s/sidecar'));
    const dep = objects.find((o) => o.kind === 'Deployment')!;
    const c = allContainers(podSpecOf(dep)).find(isAuthzContainer);
    c.env.push({ name: 'ORCHEO_AUTH_RATELIMIT_IP', value: '5' });
    c.envFrom = [{ configMapRef: { name: 'orcheo-authz-policy' } }]; // its key policy.yaml is no variable
    c.env.find((e: any) => e.name === 'ORCHEO_AUTH_DATABASE_URL').valueFrom.secretKeyRef.key = 'database-uri';
    const problems = k8sProblems(objects).join('\n');
    assert.match(problems, /unknown variable ORCHEO_AUTH_RATELIMIT_IP/);
    assert.match(problems, /unknown variable policy\.yaml/);
    assert.match(problems, /missing key database-uri of Secret orcheo-authz/);
  });
});

describe('orcheo-authz settings in compose and Kubernetes', () => {
  it('compose: required mode, Postgres, Redis, the example policy and a bootstrap token without a weak default', () => {
    const compose = loadYaml('docker-compose.yml');
    const env = composeEnv(compose.services['orcheo-authz']);
    assert.equal(env.get('ORCHEO_AUTH_MODE'), 'required');
    const db = new URL(env.get('ORCHEO_AUTH_DATABASE_URL')!);
    assert.equal(db.protocol, 'postgres:');
    const pg = composeEnv(compose.services[db.hostname]);
    assert.equal(decodeURIComponent(db.username), pg.get('POSTGRES_USER'));
    assert.equal(decodeURIComponent(db.password), pg.get('POSTGRES_PASSWORD'));
    assert.equal(db.pathname.slice(1), pg.get('POSTGRES_DB'));
    assert.equal(compose.services['orcheo-authz'].depends_on[db.hostname].condition, 'service_healthy');
    const redis = new URL(env.get('ORCHEO_AUTH_REDIS_URL')!);
    assert.equal(redis.protocol, 'redis:');
    assert.ok(compose.services[redis.hostname], `redis service ${redis.hostname}`);
    assert.equal(compose.services['orcheo-authz'].depends_on[redis.hostname].condition, 'service_healthy');
    // bootstrap token comes from the caller's environment and has no hard-coded default
    assert.match(env.get('ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN')!, /^\$\{ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN:\?[^}]+\}$/);
    // the policy file is the mounted deploy/policy/policy.yaml
    const policyPath = env.get('ORCHEO_AUTH_POLICY_FILE')!;
    const mount = (compose.services['orcheo-authz'].volumes as string[])
      .map((v) => v.split(':'))
      .find(([, target]) => policyPath.startsWith(`${target}/`) || policyPath === target);
    assert.ok(mount, `a volume provides ${policyPath}`);
    const hostFile = policyPath === mount[1] ? mount[0] : `${mount[0]}${policyPath.slice(mount[1]!.length)}`;
    assert.equal(hostFile, './deploy/policy/policy.yaml');
    assert.equal(mount[2], 'ro');
    for (const name of Object.keys(compose.services)) assert.ok(compose.services[name].healthcheck || name === 'echo', `${name} healthcheck`);
  });

  for (const dir of ['deploy/k8s/sidecar', 'deploy/k8s/shared-tier']) {
    it(`${dir}: required mode, secrets from a Secret, policy file from the policy ConfigMap`, () => {
      const objects = loadK8sObjects(dir);
      const dep = objects.find((o) => o.kind === 'Deployment')!;
      const pod = podSpecOf(dep);
      const c = allContainers(pod).find(isAuthzContainer);
      const env = new Map<string, any>(c.env.map((e: any) => [e.name, e]));
      assert.equal(env.get('ORCHEO_AUTH_MODE').value, 'required');
      for (const secret of ['ORCHEO_AUTH_DATABASE_URL', 'ORCHEO_AUTH_REDIS_URL', 'ORCHEO_AUTH_BOOTSTRAP_SERVICE_TOKEN', 'ORCHEO_AUTH_JWT_SECRET']) {
        assert.ok(env.get(secret)?.valueFrom?.secretKeyRef, `${secret} comes from a Secret, not a literal`);
      }
      const policyFile: string = env.get('ORCHEO_AUTH_POLICY_FILE').value;
      const mount = c.volumeMounts.find((m: any) => policyFile.startsWith(`${m.mountPath}/`));
      assert.ok(mount, `volume mount for ${policyFile}`);
      assert.equal(mount.subPath, undefined, 'directory mount (subPath mounts never see ConfigMap updates)');
      const vol = pod.volumes.find((v: any) => v.name === mount.name);
      const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === vol.configMap?.name);
      assert.ok(cm, 'policy ConfigMap defined');
      assert.ok(Object.keys(cm['data']).includes(policyFile.slice(mount.mountPath.length + 1)), 'ConfigMap key matches the file name');
    });
  }
});
