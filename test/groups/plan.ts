/**
 * `npm test` runs the suite as 16 processes, one per group below, instead of one per test
 * file. Each file still runs as its own `describe` (its hooks scoped to it, its tests in order),
 * but the files of a group share a Node process: start-up, module loading and the first-call
 * compilation of the service (~0.8 s of CPU per file, over 90 files) are paid once per group.
 * The suite is CPU-bound on two cores, so that was a third of its time.
 *
 * A file that inspects process-wide state (its own sockets, a global tracer) either cleans up
 * after itself or has a group of its own. Any file still runs alone:
 * `node --test dist/test/<name>.test.js`. test/test-groups.test.ts fails when a test file is in
 * no group or in two.
 *
 * Groups are by area and sized so that each takes 10-20 s alone (cli, 25 s, is one file): with
 * `--test-concurrency=4` running four at a time, the last one to start ends soon after the rest.
 */
import { basename, join } from 'node:path';
import { describe } from 'node:test';

export const GROUPS: Readonly<Record<string, readonly string[]>> = {
  admin: ['admin-readyz', 'admin-body', 'admin-client-ip', 'policy', 'policy-match', 'httpauthz-interface', 'httpauthz-proxies', 'httpauthz-deploy', 'architecture', 'metrics-histogram', 'test-groups'],
  assertion: ['assertion-keys', 'assertion-readme', 'assertion-verify', 'assertion-config', 'assertion-signer', 'tls'],
  check: ['hotpath', 'check-modes', 'check-observe', 'check-decision-id', 'check-deny', 'check-identity-keys', 'check-malformed', 'check-methods'],
  // The longest file (CLI processes against server processes): first in the alphabet, so it starts first.
  cli: ['cli-token', 'cli-usage', 'cli-format'],
  commands: ['cli-exit-codes', 'explain-cli', 'config', 'check-start'],
  decisions: ['shadow-mode', 'deny-log-sampling', 'fuzz-check', 'fuzz-timing', 'bootstrap-log', 'tracing', 'errors-api', 'explain-peek', 'explain-property', 'explain-api'],
  'deploy-monitoring': ['monitoring-prometheus', 'monitoring-metrics', 'monitoring-rules', 'monitoring-deploy', 'deploy-yaml', 'deploy-envoy', 'deploy-env', 'deploy-ports', 'deploy-policy', 'deploy-trusted-proxies'],
  // Backends cut, slowed and restored: mostly waiting.
  'fault-backends': ['fault-jwks', 'fault-postgres'],
  // Lists this process's own sockets to the server: alone.
  'fault-grpc': ['fault-grpc'],
  grpc: ['grpc-rapid-reset', 'grpc-decode', 'reflection', 'wire-compat', 'wire-descriptors', 'wire-response'],
  jwt: ['jwt-jwks', 'jwt-algorithms', 'jwt-claim-safety', 'jwt-claims', 'jwt-fetch', 'jwt-oidc', 'jwt-redirect', 'jwt-validation', 'check-jwt'],
  ratelimit: ['ratelimit-resilient', 'ratelimit-memory', 'ratelimit-client-ip', 'ratelimit-config', 'check-ratelimit', 'explain-ratelimit'],
  redis: ['ratelimit-redis', 'ratelimit-cluster', 'fault-redis'],
  serve: ['serve-embedded', 'serve-store-unreachable', 'readme-walkthrough'],
  'tokens-api': ['tokens-api-lifecycle', 'tokens-api', 'tokens-api-access', 'tokens-api-store'],
  'tokens-store': ['tokens-clock', 'tokens-heap', 'tokens-index-log', 'tokens-propagation', 'tokens-service', 'audit-recorder'],
};

/** dist/test, where the compiled test files are. */
export const TEST_DIR = join(__dirname, '..');

/** Registers the files of the group named by `entry` (dist/test/groups/<name>.test.js), each as a suite. */
export function runGroup(entry: string): void {
  const name = basename(entry).replace(/\.test\.js$/, '');
  const files = GROUPS[name];
  if (!files) throw new Error(`no test group ${name} in test/groups/plan.ts`);
  for (const file of files) {
    // The file's top-level test() and hook calls run inside this callback, so they belong to the suite.
    describe(`${file}.test.ts`, () => {
      require(join(TEST_DIR, `${file}.test.js`));
    });
  }
}
