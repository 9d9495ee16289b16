/**
 * Shipped configs of the HTTP authorization interface that no test can run here: the Envoy
 * http_service variant (no Envoy binary on these machines; it is also decoded strictly by
 * test/deploy-envoy.test.ts) and Traefik (not a Debian package), checked by parsing. nginx and Caddy
 * are run for real by test/httpauthz-proxies.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadConfig } from '../src/config/load';
import { clusterByName, clusterEndpoints, httpConnectionManagers, loadYaml, readRepoFile, validateEnvoyBootstrap } from './helpers/envoy-schema';

const IDENTITY = ['x-orcheo-authenticated', 'x-orcheo-subject', 'x-orcheo-identity-type', 'x-orcheo-token-id', 'x-orcheo-scopes', 'x-orcheo-workspaces'];
const AUTHZ_PORT = loadConfig({ ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://' }).httpAuthz.addr!.port;

type Matcher = { exact?: string; prefix?: string };
const matches = (patterns: Matcher[], name: string): boolean => patterns.some((p) => p.exact === name || (p.prefix !== undefined && name.startsWith(p.prefix)));

describe('deploy/envoy/envoy-http-service.yaml', () => {
  const cfg = loadYaml('deploy/envoy/envoy-http-service.yaml');
  const ea = httpConnectionManagers(cfg)[0]!.hcm.http_filters[0].typed_config;

  it('decodes strictly and uses http_service, fail closed with a short timeout', () => {
    assert.deepEqual(validateEnvoyBootstrap(cfg).errors, []);
    assert.equal(ea.grpc_service, undefined);
    assert.equal(ea.failure_mode_allow, false);
    assert.equal(ea.status_on_error.code, 'ServiceUnavailable');
    const seconds = Number(String(ea.http_service.server_uri.timeout).replace(/s$/, ''));
    assert.ok(seconds > 0 && seconds <= 1);
  });

  it('targets the HTTP authorization interface port, and the path prefix matches the default', () => {
    const su = ea.http_service.server_uri;
    const cluster = clusterByName(cfg, su.cluster);
    assert.ok(cluster, `cluster ${su.cluster}`);
    assert.deepEqual(clusterEndpoints(cluster), [{ address: 'orcheo-authz', port: AUTHZ_PORT }]);
    assert.equal(new URL(su.uri).port, String(AUTHZ_PORT));
    assert.equal(ea.http_service.path_prefix, loadConfig({ ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://' }).httpAuthz.pathPrefix);
  });

  it('sends the credential headers and passes identity up, deny headers down', () => {
    const req: Matcher[] = ea.allowed_headers.patterns;
    for (const h of ['authorization', 'sec-websocket-protocol', 'upgrade', 'x-forwarded-for', 'x-request-id']) assert.ok(matches(req, h), h);
    assert.ok(matches(req, 'x-orcheo-forged'), 'client x-orcheo-* reach the service, which lists them in x-envoy-auth-headers-to-remove');
    const up: Matcher[] = ea.http_service.authorization_response.allowed_upstream_headers.patterns;
    for (const h of [...IDENTITY, 'x-orcheo-identity']) assert.ok(matches(up, h), h);
    const down: Matcher[] = ea.http_service.authorization_response.allowed_client_headers.patterns;
    for (const h of ['content-type', 'www-authenticate', 'retry-after']) assert.ok(matches(down, h), h);
  });

  it('has no context_extensions (Envoy does not send them to an HTTP service)', () => {
    assert.doesNotMatch(readRepoFile('deploy/envoy/envoy-http-service.yaml'), /^\s*context_extensions:/m);
  });
});

describe('deploy/traefik', () => {
  const dyn = loadYaml('deploy/traefik/dynamic.yml');
  const stat = loadYaml('deploy/traefik/traefik.yml');
  const FORWARD_AUTH_OPTIONS = new Set(['address', 'tls', 'trustForwardHeader', 'authResponseHeaders', 'authResponseHeadersRegex', 'authRequestHeaders', 'addAuthCookiesToResponse', 'headerField', 'forwardBody', 'maxBodySize', 'preserveLocationHeader', 'preserveRequestMethod']);

  it('ForwardAuth middleware: known options only, the service\'s port, no trusted client forward headers', () => {
    const fa = dyn.http.middlewares['orcheo-authz'].forwardAuth;
    for (const k of Object.keys(fa)) assert.ok(FORWARD_AUTH_OPTIONS.has(k), `unknown forwardAuth option ${k}`);
    const url = new URL(fa.address);
    assert.equal(url.port, String(AUTHZ_PORT));
    for (const k of url.searchParams.keys()) assert.ok(['auth', 'scopes', 'workspace'].includes(k), `unknown route hint ${k}`);
    assert.equal(fa.trustForwardHeader, false);
  });

  it('every identity header is copied, and the regex covers (and so first deletes) every x-orcheo-* name', () => {
    const fa = dyn.http.middlewares['orcheo-authz'].forwardAuth;
    const listed = (fa.authResponseHeaders as string[]).map((h) => h.toLowerCase());
    for (const h of IDENTITY) assert.ok(listed.includes(h), h);
    // Go regexp syntax; `(?i)` is the only construct used, which JavaScript spells as a flag.
    const re = new RegExp(String(fa.authResponseHeadersRegex).replace(/^\(\?i\)/, ''), 'i');
    for (const h of [...IDENTITY, 'X-Orcheo-Forged']) assert.ok(re.test(h), h);
    assert.ok(!re.test('X-Other'), 'regex must not delete unrelated headers');
  });

  it('the router applies the middleware; static config loads the dynamic file on the entry point', () => {
    const router = dyn.http.routers.app;
    assert.deepEqual(router.middlewares, ['drop-original-headers', 'orcheo-authz'], 'client X-Original-* removed before ForwardAuth');
    const drop = dyn.http.middlewares['drop-original-headers'].headers.customRequestHeaders;
    assert.deepEqual(drop, { 'X-Original-Uri': '', 'X-Original-Method': '' }, 'an empty value removes the header in Traefik');
    assert.ok(dyn.http.services[router.service], `service ${router.service}`);
    for (const ep of router.entryPoints) assert.ok(stat.entryPoints[ep], `entry point ${ep}`);
    const compose = loadYaml('docker-compose.yml');
    const mounts: string[] = compose.services.traefik.volumes;
    assert.ok(mounts.includes(`./deploy/traefik/dynamic.yml:${stat.providers.file.filename}:ro`), 'compose mounts dynamic.yml where the static config reads it');
    assert.equal(stat.entryPoints.web.forwardedHeaders, undefined, 'no trusted IPs: client X-Forwarded-* replaced');
  });
});

describe('compose profiles for the HTTP interface', () => {
  it('each proxy mounts its shipped file and sits in the trusted range', async () => {
    const compose = loadYaml('docker-compose.yml');
    const { trustedProxies } = await import('../src/ratelimit/client-ip');
    const authzEnv = compose.services['orcheo-authz'].environment;
    assert.equal(authzEnv.ORCHEO_AUTH_HTTP_AUTHZ_ADDR, `0.0.0.0:${AUTHZ_PORT}`);
    const trusted = trustedProxies(loadConfig({ ORCHEO_AUTH_TRUSTED_PROXIES: authzEnv.ORCHEO_AUTH_TRUSTED_PROXIES, ORCHEO_AUTH_SERVICE_TOKEN_DB_PATH: 'memory://' }).trustedProxies);
    const files: Record<string, string> = { nginx: './deploy/nginx/nginx.conf', caddy: './deploy/caddy/Caddyfile', traefik: './deploy/traefik/traefik.yml', 'envoy-http': './deploy/envoy/envoy-http-service.yaml' };
    for (const [name, file] of Object.entries(files)) {
      const svc = compose.services[name];
      assert.deepEqual(svc.profiles, [name]);
      assert.ok((svc.volumes as string[]).some((v) => v.startsWith(`${file}:`)), `${name} mounts ${file}`);
      assert.ok(trusted.has(svc.networks.default.ipv4_address), `${name} trusted`);
      for (const p of svc.ports as string[]) assert.match(p, /^127\.0\.0\.1:/);
    }
    assert.deepEqual(compose.services.echo.networks.default.aliases, ['app'], 'the shipped configs name the upstream app');
  });
});
