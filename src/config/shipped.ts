/**
 * Secret values that ship publicly in deploy/ (compose, Kubernetes secrets). They are compiled in
 * rather than read from deploy/ at run time because an installed image has no deploy/ directory;
 * test/config.test.ts checks that every secret-looking value in deploy/ is listed here.
 */
export const SHIPPED_SECRET_VALUES: readonly string[] = [
  'CHANGE-ME-bootstrap-token',
  'CHANGE-ME-at-least-32-bytes-of-random-secret',
];

/** Marker the shipped manifests put in every placeholder. */
export const PLACEHOLDER_MARKER = 'CHANGE-ME';
