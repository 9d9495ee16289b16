/**
 * Alert rules (deploy/monitoring/): promtool checks and unit-tests them, the PrometheusRule carries the
 * same groups as the plain rules file, every alert has a summary, a description and a runbook section,
 * and every metric the rules use is one the service exports.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { loadYaml, readRepoFile, repoPath } from './helpers/envoy-schema';
import { missingBinary } from './helpers/monitoring';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';

function promtool(...args: string[]): { code: number | null; out: string } {
  const r = spawnSync(PROMTOOL, args, { cwd: repoPath('deploy/monitoring'), encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

interface AlertRule {
  alert: string;
  expr: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const groups = (): Array<{ name: string; rules: AlertRule[] }> => loadYaml('deploy/monitoring/rules.yaml').groups;
const alerts = (): AlertRule[] => groups().flatMap((g) => g.rules);

describe('alert rules', () => {
  const skip = missingBinary(PROMTOOL);

  it('promtool check rules accepts rules.yaml', { skip }, () => {
    const r = promtool('check', 'rules', 'rules.yaml');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${alerts().length} rules found`));
  });

  it('promtool test rules passes rules.test.yaml', { skip }, () => {
    const r = promtool('test', 'rules', 'rules.test.yaml');
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /SUCCESS/);
  });

  it('the unit tests cover every alert, with a firing and a not-firing evaluation', () => {
    const t = loadYaml('deploy/monitoring/rules.test.yaml');
    assert.deepEqual(t.rule_files, ['rules.yaml']);
    const evals = t.tests.flatMap((x: any) => x.alert_rule_test) as Array<{ alertname: string; exp_alerts: unknown[] }>;
    for (const a of alerts()) {
      const mine = evals.filter((e) => e.alertname === a.alert);
      assert.ok(mine.some((e) => e.exp_alerts.length > 0), `${a.alert}: no evaluation where it fires`);
      assert.ok(mine.some((e) => e.exp_alerts.length === 0), `${a.alert}: no evaluation where it must stay silent`);
    }
  });

  it('the PrometheusRule has exactly the groups of rules.yaml', () => {
    const pr = loadYaml('deploy/monitoring/prometheus-rule.yaml');
    assert.equal(pr.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(pr.kind, 'PrometheusRule');
    assert.deepEqual(pr.spec.groups, groups());
  });

  it('every alert has a severity, a summary, a description that points at its runbook section', () => {
    const readme = readRepoFile('deploy/README.md');
    const section = readme.slice(readme.indexOf('## Alerts and runbook'));
    assert.ok(readme.includes('## Alerts and runbook'), 'deploy/README.md has no "Alerts and runbook" section');
    const names = new Set<string>();
    for (const a of alerts()) {
      assert.ok(!names.has(a.alert), `duplicate alert ${a.alert}`);
      names.add(a.alert);
      assert.match(a.labels?.severity ?? '', /^(warning|critical)$/, a.alert);
      assert.ok((a.annotations?.summary ?? '').length > 10, `${a.alert}: summary`);
      assert.ok((a.annotations?.description ?? '').length > 60, `${a.alert}: description should say what to do`);
      assert.ok(a.annotations?.description?.includes(`deploy/README.md#${a.alert.toLowerCase()}`), `${a.alert}: runbook link`);
      assert.match(section, new RegExp(`^### ${a.alert}$`, 'm'), `${a.alert}: no runbook heading in deploy/README.md`);
    }
  });

  it('rules use only metrics the service exports (or up)', () => {
    const src = readRepoFile('src/admin/metrics.ts');
    for (const a of alerts()) {
      for (const m of a.expr.match(/\borcheo_authz_[a-z_]+/g) ?? []) {
        const base = m.replace(/_(bucket|count|sum)$/, '');
        assert.ok(src.includes(`'${base}'`), `${a.alert}: ${m} is not defined in src/admin/metrics.ts`);
      }
    }
  });
});
