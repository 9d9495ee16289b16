/**
 * Deployment files, part 2: every Envoy config decodes STRICTLY against Envoy's canonical v3 protos
 * (see test/helpers/envoy-schema.ts), and the ext_authz wiring matches the contract.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  clusterByName,
  clusterEndpoints,
  clusters,
  envoyConfigSources,
  EXT_AUTHZ_PER_ROUTE_TYPE,
  EXT_AUTHZ_TYPE,
  HTTP_PROTOCOL_OPTIONS_TYPE,
  httpConnectionManagers,
  loadEnvoyRoot,
  loadK8sObjects,
  loadYaml,
  readRepoFile,
  ROUTER_TYPE,
  UPSTREAM_TLS_TYPE,
  validateEnvoyBootstrap,
  validateEnvoyMessage,
} from './helpers/envoy-schema';

const SCOPES = ['workflows:read', 'workflows:write', 'workflows:execute', 'vault:read', 'vault:write', 'admin:tokens:read', 'admin:tokens:write'];
const CONTEXT_EXTENSION_KEYS = ['auth', 'required_scopes', 'required_workspace'];

const clone = <T>(v: T): T => structuredClone(v);
const usesHttpService = (config: unknown): boolean => httpConnectionManagers(config).some(({ hcm }) => (hcm.http_filters as any[]).some((f) => f.typed_config?.http_service));

describe('Envoy configs decode strictly against the canonical protos', () => {
  const sources = envoyConfigSources();

  it('finds the compose, shared-tier and sidecar configs', () => {
    const names = sources.map((s) => s.name);
    assert.ok(names.includes('deploy/envoy/envoy.yaml'));
    assert.ok(names.includes('deploy/envoy/envoy-shared-tier.yaml'));
    assert.ok(names.some((n) => n.startsWith('deploy/k8s/sidecar/')), `sidecar Envoy ConfigMap missing: ${names.join(', ')}`);
  });

  for (const { name, config } of sources) {
    // The http_service variant has no per-route config: Envoy sends no context_extensions over HTTP.
    const transport = usesHttpService(config) ? ['envoy.extensions.filters.http.ext_authz.v3.HttpService'] : ['envoy.extensions.filters.http.ext_authz.v3.ExtAuthzPerRoute', 'envoy.config.core.v3.GrpcService'];
    it(`${name}: valid envoy.config.bootstrap.v3.Bootstrap`, () => {
      const r = validateEnvoyBootstrap(config);
      assert.deepEqual(r.errors, []);
      // The Any payloads were really decoded, not skipped.
      for (const t of [
        'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
        'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz',
        'envoy.extensions.filters.http.router.v3.Router',
        'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        ...transport,
      ]) {
        assert.ok(r.visitedTypes.has(t), `${t} not visited`);
      }
    });
  }
});

describe('the strict validator can fail', () => {
  const base = loadYaml('deploy/envoy/envoy.yaml');
  const extAuthz = (cfg: any): any => httpConnectionManagers(cfg)[0]!.hcm.http_filters[0].typed_config;
  const errorsOf = (cfg: unknown): string[] => validateEnvoyBootstrap(cfg).errors;

  it('accepts the unmodified config (control)', () => {
    assert.deepEqual(errorsOf(clone(base)), []);
  });

  it('rejects an unknown top-level field', () => {
    const cfg = clone(base);
    cfg.static_resources.clustrs = [];
    assert.match(errorsOf(cfg).join('\n'), /unknown field "clustrs" in envoy\.config\.bootstrap\.v3\.Bootstrap\.StaticResources/);
  });

  it('rejects an unknown field inside an Any payload (ext_authz typed_config)', () => {
    const cfg = clone(base);
    extAuthz(cfg).failure_mode_allowed = false;
    assert.match(errorsOf(cfg).join('\n'), /unknown field "failure_mode_allowed" in envoy\.extensions\.filters\.http\.ext_authz\.v3\.ExtAuthz/);
  });

  it('rejects an unknown field inside per-route check_settings', () => {
    const cfg = clone(base);
    const route = httpConnectionManagers(cfg)[0]!.hcm.route_config.virtual_hosts[0].routes[0];
    route.typed_per_filter_config['envoy.filters.http.ext_authz'].check_settings.context_extension = { auth: 'public' };
    assert.match(errorsOf(cfg).join('\n'), /unknown field "context_extension"/);
  });

  it('rejects an unresolvable @type', () => {
    const cfg = clone(base);
    extAuthz(cfg)['@type'] = 'type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthzz';
    assert.match(errorsOf(cfg).join('\n'), /unresolvable type URL .*ExtAuthzz/);
    const cfg2 = clone(base);
    extAuthz(cfg2)['@type'] = 'envoy.extensions.filters.http.ext_authz.v3.ExtAuthz'; // no type URL prefix
    assert.match(errorsOf(cfg2).join('\n'), /must be a type URL/);
  });

  it('rejects a typed_config whose @type does not match its fields', () => {
    const cfg = clone(base);
    extAuthz(cfg)['@type'] = ROUTER_TYPE;
    assert.match(errorsOf(cfg).join('\n'), /unknown field "grpc_service" in envoy\.extensions\.filters\.http\.router\.v3\.Router/);
  });

  it('rejects bad enums, durations, scalars and wrong shapes', () => {
    const cases: [(c: any) => void, RegExp][] = [
      [(c) => (extAuthz(c).transport_api_version = 'V4'), /"V4" is not a value of enum envoy\.config\.core\.v3\.ApiVersion/],
      [(c) => (extAuthz(c).grpc_service.timeout = 0.25), /expected a duration string/],
      [(c) => (extAuthz(c).grpc_service.timeout = '250ms'), /expected a duration string/],
      [(c) => (extAuthz(c).failure_mode_allow = 'false'), /expected true or false/],
      [(c) => (c.static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = 70000), /70000 must be <= 65535/],
      [(c) => (c.static_resources.clusters = { name: 'x' }), /expected a list for repeated field clusters/],
      [(c) => (extAuthz(c).status_on_error.code = 'NotAStatus'), /not a value of enum envoy\.type\.v3\.StatusCode/],
      [(c) => (c.static_resources.clusters[0].connect_timeout = null), /null is not a value/],
    ];
    for (const [mutate, re] of cases) {
      const cfg = clone(base);
      mutate(cfg);
      assert.match(errorsOf(cfg).join('\n'), re);
    }
  });

  it('rejects two members of one oneof, and a missing required oneof', () => {
    const cfg = clone(base);
    const route = httpConnectionManagers(cfg)[0]!.hcm.route_config.virtual_hosts[0].routes[0];
    route.match.prefix = '/';
    assert.match(errorsOf(cfg).join('\n'), /oneof envoy\.config\.route\.v3\.RouteMatch\.path_specifier has more than one member set: prefix, path/);
    const cfg2 = clone(base);
    const r2 = httpConnectionManagers(cfg2)[0]!.hcm.route_config.virtual_hosts[0].routes[0];
    delete r2.match.path;
    assert.match(errorsOf(cfg2).join('\n'), /oneof envoy\.config\.route\.v3\.RouteMatch\.path_specifier requires one of/);
  });

  it('enforces protoc-gen-validate rules (required message, min_len, duration > 1ms, min_items)', () => {
    const cfg = clone(base);
    delete httpConnectionManagers(cfg)[0]!.hcm.stat_prefix;
    assert.match(errorsOf(cfg).join('\n'), /required string field stat_prefix/);
    const cfg2 = clone(base);
    delete cfg2.static_resources.clusters[0].health_checks[0].interval;
    assert.match(errorsOf(cfg2).join('\n'), /required field interval of envoy\.config\.core\.v3\.HealthCheck is missing/);
    const cfg3 = clone(base);
    cfg3.static_resources.clusters[0].dns_refresh_rate = '0.0005s';
    assert.match(errorsOf(cfg3).join('\n'), /dns_refresh_rate: 0\.0005s must be > 1000000ns/);
    const cfg4 = clone(base);
    httpConnectionManagers(cfg4)[0]!.hcm.route_config.virtual_hosts[0].domains = [];
    assert.match(errorsOf(cfg4).join('\n'), /needs at least 1 item/);
  });

  it('rejects deprecated fields (http2_protocol_options on the cluster)', () => {
    const cfg = clone(base);
    cfg.static_resources.clusters[0].http2_protocol_options = {};
    assert.match(errorsOf(cfg).join('\n'), /field envoy\.config\.cluster\.v3\.Cluster\.http2_protocol_options is deprecated/);
  });

  it('accepts lowerCamel JSON names but not both spellings at once', () => {
    const cfg = clone(base);
    const ea = extAuthz(cfg);
    ea.failureModeAllow = ea.failure_mode_allow;
    delete ea.failure_mode_allow;
    assert.deepEqual(errorsOf(cfg), []);
    ea.failure_mode_allow = false;
    assert.match(errorsOf(cfg).join('\n'), /given twice/);
  });

  it('handles well-known types: Struct, wrappers, Any holding a wrapper', () => {
    const root = loadEnvoyRoot();
    const ok = validateEnvoyMessage(root, 'envoy.config.core.v3.Metadata', {
      filter_metadata: { a: { x: 1, y: [true, null, 'z'], n: { m: 2 } } },
      typed_filter_metadata: { b: { '@type': 'type.googleapis.com/google.protobuf.UInt32Value', value: 3 } },
    });
    assert.deepEqual(ok.errors, []);
    const bad = validateEnvoyMessage(root, 'envoy.config.core.v3.Metadata', {
      typed_filter_metadata: { b: { '@type': 'type.googleapis.com/google.protobuf.UInt32Value', value: -1 } },
    });
    assert.match(bad.errors.join('\n'), /out of range for uint32/);
    const wrapper = validateEnvoyMessage(root, 'envoy.config.cluster.v3.Cluster', { name: 'c', per_connection_buffer_limit_bytes: 'lots' });
    assert.match(wrapper.errors.join('\n'), /expected an integer \(uint32\)/);
  });
});

describe('ext_authz wiring', () => {
  for (const { name, config } of envoyConfigSources()) {
    describe(name, () => {
      const hcms = httpConnectionManagers(config);

      it('one HTTP connection manager with ext_authz first and the router last', () => {
        assert.equal(hcms.length, 1);
        const { hcm } = hcms[0]!;
        const filters = hcm.http_filters as any[];
        assert.equal(filters[0].typed_config['@type'], EXT_AUTHZ_TYPE);
        assert.equal(filters[0].name, 'envoy.filters.http.ext_authz');
        assert.equal(filters[filters.length - 1].typed_config['@type'], ROUTER_TYPE);
        assert.equal(filters.filter((f) => f.typed_config['@type'] === EXT_AUTHZ_TYPE).length, 1);
        assert.equal(hcm.use_remote_address, true);
      });

      // The http_service variant (deploy/envoy/envoy-http-service.yaml) is checked in test/httpauthz-deploy.test.ts.
      // The http_service variant's filter and cluster are checked in test/httpauthz-deploy.test.ts.
      const grpcVariant = !usesHttpService(config);
      if (grpcVariant) it('gRPC ext_authz, V3, fail closed, explicit timeout, HTTP/2 cluster', () => {
        const ea = hcms[0]!.hcm.http_filters[0].typed_config;
        assert.equal(ea.transport_api_version, 'V3');
        assert.equal(ea.failure_mode_allow, false);
        assert.equal(ea.http_service, undefined);
        assert.match(ea.grpc_service.timeout, /^0?\.\d+s$|^[1-9]\d*(\.\d+)?s$/);
        const seconds = Number(ea.grpc_service.timeout.slice(0, -1));
        assert.ok(seconds > 0 && seconds <= 1, `timeout ${ea.grpc_service.timeout} should be short`);
        const clusterName = ea.grpc_service.envoy_grpc.cluster_name;
        const cluster = clusterByName(config, clusterName);
        assert.ok(cluster, `cluster ${clusterName} exists`);
        const opts = cluster.typed_extension_protocol_options?.['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'];
        assert.equal(opts?.['@type'], HTTP_PROTOCOL_OPTIONS_TYPE, 'map key matches the extension type');
        assert.ok(opts.explicit_http_config?.http2_protocol_options, 'HTTP/2 to orcheo-authz');
      });

      it('every route targets an existing cluster and per-route configs are keyed by the filter name', () => {
        const filterNames = new Set((hcms[0]!.hcm.http_filters as any[]).map((f) => f.name));
        const names = new Set(clusters(config).map((c) => c.name));
        for (const vh of hcms[0]!.hcm.route_config.virtual_hosts) {
          for (const r of vh.routes) {
            assert.ok(names.has(r.route.cluster), `route ${r.name} -> unknown cluster ${r.route.cluster}`);
            for (const key of Object.keys(r.typed_per_filter_config ?? {})) {
              assert.ok(filterNames.has(key), `typed_per_filter_config key ${key} names no HTTP filter`);
            }
          }
        }
        for (const c of clusters(config)) assert.equal(c.load_assignment.cluster_name, c.name);
      });

      if (grpcVariant) it('context_extensions use only the contract keys and values', () => {
        const seen = new Map<string, Record<string, string>>();
        for (const vh of hcms[0]!.hcm.route_config.virtual_hosts) {
          for (const r of vh.routes) {
            const per = r.typed_per_filter_config?.['envoy.filters.http.ext_authz'];
            if (!per) continue;
            assert.equal(per['@type'], EXT_AUTHZ_PER_ROUTE_TYPE);
            assert.notEqual(per.disabled, true, 'ext_authz must never be disabled (it strips forged x-orcheo-* headers)');
            const ext = per.check_settings?.context_extensions ?? {};
            for (const [k, v] of Object.entries<string>(ext)) {
              assert.ok(CONTEXT_EXTENSION_KEYS.includes(k), `unknown context extension ${k}`);
              if (k === 'auth') assert.ok(['public', 'optional', 'required'].includes(v));
              if (k === 'required_scopes') for (const s of v.split(/[\s,]+/).filter(Boolean)) assert.ok(SCOPES.includes(s), `unknown scope ${s}`);
              if (k === 'required_workspace') assert.match(v, /^[A-Za-z0-9._:-]+$/);
            }
            seen.set(r.name, ext);
          }
        }
        const healthz = hcms[0]!.hcm.route_config.virtual_hosts[0].routes.find((r: any) => r.match.path === '/healthz');
        assert.ok(healthz, '/healthz route');
        assert.equal(seen.get(healthz.name)?.['auth'], 'public');
        assert.ok([...seen.values()].some((e) => e['required_scopes'] && e['required_workspace']), 'a route with required_scopes and required_workspace');
        const last = hcms[0]!.hcm.route_config.virtual_hosts[0].routes.at(-1);
        assert.equal(last.match.prefix, '/', 'default route last');
      });
    });
  }

  it('shared tier: authz cluster over mTLS with SNI, client cert, CA and SAN check', () => {
    const cfg = loadYaml('deploy/envoy/envoy-shared-tier.yaml');
    const ea = httpConnectionManagers(cfg)[0]!.hcm.http_filters[0].typed_config;
    const cluster = clusterByName(cfg, ea.grpc_service.envoy_grpc.cluster_name);
    const ts = cluster.transport_socket;
    assert.equal(ts.name, 'envoy.transport_sockets.tls');
    assert.equal(ts.typed_config['@type'], UPSTREAM_TLS_TYPE);
    const tls = ts.typed_config;
    assert.ok(tls.sni, 'SNI set');
    assert.equal(tls.common_tls_context.tls_certificates.length, 1, 'client certificate for mTLS');
    assert.match(tls.common_tls_context.tls_certificates[0].certificate_chain.filename, /tls\.crt$/);
    assert.match(tls.common_tls_context.tls_certificates[0].private_key.filename, /tls\.key$/);
    assert.match(tls.common_tls_context.validation_context.trusted_ca.filename, /ca\.crt$/);
    const sans = tls.common_tls_context.validation_context.match_typed_subject_alt_names.map((m: any) => m.matcher.exact);
    assert.ok(sans.includes(tls.sni), 'the SNI name is also the SAN that is verified');
    assert.deepEqual(tls.common_tls_context.alpn_protocols, ['h2']);
    // the compose / sidecar configs talk plaintext to a local or same-network orcheo-authz
    assert.equal(clusterByName(loadYaml('deploy/envoy/envoy.yaml'), 'orcheo_authz').transport_socket, undefined);
    // and the endpoint is the headless Service (per-pod balancing)
    assert.match(clusterEndpoints(cluster)[0]!.address, /^orcheo-authz-headless\./);
  });

  it('the SNI / SAN name is a dnsName of the cert-manager Certificate', () => {
    const cfg = loadYaml('deploy/envoy/envoy-shared-tier.yaml');
    const cluster = clusterByName(cfg, 'orcheo_authz');
    const cert = loadK8sObjects('deploy/k8s/shared-tier').find((o) => o.kind === 'Certificate' && o['spec'].secretName === 'orcheo-authz-tls');
    const dnsNames: string[] = cert?.['spec'].dnsNames ?? [];
    assert.ok(dnsNames.includes(cluster.transport_socket.typed_config.sni), 'SNI listed in dnsNames');
    assert.ok(dnsNames.includes(clusterEndpoints(cluster)[0]!.address), 'headless Service name listed in dnsNames');
  });
});

describe('deploy/README.md grpcurl examples', () => {
  /** [target method, JSON body] of every grpcurl call with -d in the README. */
  function grpcurlCalls(md: string): [string, string][] {
    const calls: [string, string][] = [];
    const text = md.replace(/\\\n\s*/g, ' ');
    for (const m of text.matchAll(/grpcurl [^\n]*?-d '([^']*)'[^\n]*?\s(\S+\/\S+)\s*$/gm)) calls.push([m[2] as string, m[1] as string]);
    for (const m of text.matchAll(/grpcurl [^\n]*?-d @[^\n]*?\s(\S+\/\S+) <<EOF\n([\s\S]*?)\nEOF/g)) calls.push([m[1] as string, m[2] as string]);
    return calls;
  }

  it('every Check request body is a valid envoy.service.auth.v3.CheckRequest', () => {
    const calls = grpcurlCalls(readRepoFile('deploy/README.md'));
    const checks = calls.filter(([method]) => method === 'envoy.service.auth.v3.Authorization/Check');
    assert.ok(checks.length >= 2, `found ${checks.length} Check examples`);
    const root = loadEnvoyRoot();
    for (const [, body] of checks) {
      const json = JSON.parse(body.replace(/\$[A-Z_]+/g, 'placeholder'));
      assert.deepEqual(validateEnvoyMessage(root, 'envoy.service.auth.v3.CheckRequest', json).errors, [], body);
      const ext = json.attributes.contextExtensions ?? json.attributes.context_extensions ?? {};
      for (const k of Object.keys(ext)) assert.ok(CONTEXT_EXTENSION_KEYS.includes(k), k);
    }
    const health = calls.filter(([method]) => method === 'grpc.health.v1.Health/Check');
    for (const [, body] of health) assert.deepEqual(Object.keys(JSON.parse(body)), ['service']);
    // and the extraction + validation can fail
    assert.match(
      validateEnvoyMessage(root, 'envoy.service.auth.v3.CheckRequest', { attributes: { request: { http: { method: 'GET', headerz: {} } } } }).errors.join('\n'),
      /unknown field "headerz"/,
    );
  });
});
