import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { App } from '../../src/app';
import { insertToken } from '../../src/store/tokens';

/**
 * The test policy every explain/shadow test uses; the oracle in explain-property.test.ts is written
 * against this text, not against the service's evaluator.
 */
export const TEST_POLICY = `
rules:
  - match: { methods: [GET, HEAD], path: /api/credentials/** }
    scopes: [vault:read]
  - match: { methods: [GET, HEAD], path: /api/workflows/** }
    scopes: [workflows:read]
  - match: { path: "/api/workspaces/{workspace_id}/**" }
    workspace: "{workspace_id}"
  - match: { path: /api/beta/** }
    scopes: [vault:write]
    enforce: false
  - match: { path: /healthz }
    auth: public
default:
  scopes: []
`;

/** Writes the policy to a fresh directory; `remove` deletes it. */
export function policyFile(text = TEST_POLICY): { path: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'orcheo-explain-'));
  const path = join(dir, 'policy.yaml');
  writeFileSync(path, text);
  return { path, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A bootstrap secret for tests: it holds every admin scope. */
export const BOOTSTRAP = 'explain-test-bootstrap-secret-0123456789';

/** A service token in the store and this replica's index; returns its secret. */
export async function serviceToken(app: App, id: string, scopes: string[], workspaces: string[], expiresAt?: number): Promise<string> {
  const { record, secret } = await insertToken(app.db, { id, scopes, workspaces, expiresAt });
  app.index.apply(record);
  return secret;
}

export interface ExplainReply {
  readonly status: number;
  readonly text: string;
  readonly body: any;
}

export async function explainCall(app: App, body: unknown, token: string | undefined = BOOTSTRAP): Promise<ExplainReply> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`http://127.0.0.1:${app.httpPort}/api/admin/explain`, { method: 'POST', headers, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, text, body: text ? JSON.parse(text) : undefined };
}

/** The service's JSON log lines. */
export function logLines(logs: readonly string[]): Record<string, any>[] {
  return logs.flatMap((s) => s.split('\n')).filter(Boolean).map((l) => JSON.parse(l) as Record<string, any>);
}

/** One sample of a metric from the live /metrics endpoint (0 when the series does not exist). */
export async function metricValue(app: App, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${app.httpPort}/metrics`)).text();
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (want.every((w) => line.includes(w))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
