/**
 * `gpushare simulate` as a user runs it (the built CLI), on a four-node, 24-pod trace in
 * test/fixtures/sim-*.csv: the shapes of --json, --placements and --report, and one clear line
 * with exit status 2 for each kind of bad input.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runCli } from './helpers/cli.js';

const NODES = `${REPO_ROOT}test/fixtures/sim-nodes.csv`;
const PODS = `${REPO_ROOT}test/fixtures/sim-pods.csv`;
const BAD_PODS = `${REPO_ROOT}test/fixtures/sim-pods-bad.csv`;
const HEADER = 'seq,pod,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,node,gpu_indexes';
const POLICIES = ['random', 'binpack', 'spread', 'bestfit', 'topology', 'fragmentation', 'fgd'];

const dir = mkdtempSync(join(tmpdir(), 'gpushare-sim-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  policy: string;
  seed: number;
  pods: number;
  capacityGpus: number;
  allocatedAt100: number | null;
  allocatedAt130: number;
  failures: Record<string, number>;
}

describe('gpushare simulate', () => {
  it('--json: one run per policy and seed, with allocation at 100% and 130% arrived', () => {
    const r = runCli(['simulate', '--nodes', NODES, '--pods', PODS, '--policy', 'all', '--seeds', '42-43', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const doc = JSON.parse(r.stdout) as { version: number; inflate: number; seeds: number[]; runs: Run[]; summary: { policy: string; runs: number }[] };
    expect(doc).toMatchObject({ version: 1, inflate: 1.3, seeds: [42, 43] });
    expect(doc.runs.map((x) => `${x.policy}/${x.seed}`)).toEqual(POLICIES.flatMap((p) => [`${p}/42`, `${p}/43`]));
    for (const run of doc.runs) {
      expect(run.capacityGpus).toBe(7);
      expect(typeof run.allocatedAt100).toBe('number');
      expect(run.allocatedAt100).toBeGreaterThan(0);
      expect(run.allocatedAt100).toBeLessThanOrEqual(100);
      expect(run.allocatedAt130).toBeGreaterThanOrEqual(run.allocatedAt100 ?? 0);
      expect(run.pods).toBeGreaterThanOrEqual(24);
    }
    expect(doc.summary.map((s) => [s.policy, s.runs])).toEqual(POLICIES.map((p) => [p, 2]));
  });

  it('is reproducible: the same seed gives the same document', () => {
    const args = ['simulate', '--nodes', NODES, '--pods', PODS, '--policy', 'fragmentation', '--seeds', '7', '--json'];
    expect(runCli(args).stdout).toBe(runCli(args).stdout);
  });

  it('--placements: the header, then one row per arriving pod in arrival order', () => {
    const out = join(dir, 'placements.csv');
    const r = runCli(['simulate', '--nodes', NODES, '--pods', PODS, '--policy', 'bestfit', '--seeds', '42', '--json', '--placements', out]);
    expect(r.status).toBe(0);
    const run = (JSON.parse(r.stdout) as { runs: Run[] }).runs[0] as Run;
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    expect(lines[0]).toBe(HEADER);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows.length).toBe(run.pods);
    const failed = Object.values(run.failures).reduce((a, b) => a + b, 0);
    expect(rows.filter((c) => c[7] === '').length).toBe(failed);
    const gpusOf: Record<string, number> = { 'node-a': 4, 'node-b': 2, 'node-c': 1, 'node-d': 0 };
    rows.forEach((c, k) => {
      expect(c).toHaveLength(9);
      expect(c[0]).toBe(String(k));
      const node = c[7] as string;
      const indexes = c[8] === '' ? [] : (c[8] as string).split(';').map(Number);
      if (node === '') {
        expect(indexes).toEqual([]);
        return;
      }
      expect(Object.keys(gpusOf)).toContain(node);
      expect(indexes.length).toBe(Number(c[4]));
      for (const i of indexes) expect(i).toBeLessThan(gpusOf[node] ?? 0);
      if (c[6] === 'V100M32') expect(node).toBe('node-b');
    });
  });

  it('--placements with several runs writes one file per policy and seed', () => {
    const out = join(dir, 'many.csv');
    const r = runCli(['simulate', '--nodes', NODES, '--pods', PODS, '--policy', 'random,bestfit', '--seeds', '1-2', '--placements', out]);
    expect(r.status).toBe(0);
    for (const name of ['many-random-1.csv', 'many-random-2.csv', 'many-bestfit-1.csv', 'many-bestfit-2.csv']) {
      expect(readFileSync(join(dir, name), 'utf8').split('\n')[0]).toBe(HEADER);
    }
  });

  it('--report writes an HTML page with the curves and the table', () => {
    const out = join(dir, 'report.html');
    const r = runCli(['simulate', '--nodes', NODES, '--pods', PODS, '--policy', 'bestfit,fragmentation', '--seeds', '42', '--report', out]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^policy\s+seeds\s+alloc@100%/);
    const html = readFileSync(out, 'utf8');
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain('<svg');
    expect(html.match(/<path /g)).toHaveLength(2);
    expect(html).toContain('<td>fragmentation</td>');
  });

  it('--isolation sm-partition: sharing pods ask for SM partitions, which the trace\'s pre-Hopper GPUs refuse, saying so', () => {
    const args = ['simulate', '--nodes', NODES, '--pods', PODS, '--policy', 'bestfit', '--seeds', '42', '--json'];
    const plain = (JSON.parse(runCli(args).stdout) as { runs: Run[] }).runs[0] as Run;
    const r = runCli([...args, '--isolation', 'sm-partition']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const run = (JSON.parse(r.stdout) as { runs: Run[] }).runs[0] as Run;
    expect(plain.failures['notPartitionable']).toBeUndefined();
    expect(run.failures['notPartitionable']).toBeGreaterThan(0);
    expect(run.allocatedAt130).toBeLessThan(plain.allocatedAt130);
  });

  it.each([
    ['a missing node file', ['--nodes', join(dir, 'nope.csv'), '--pods', PODS], /cannot read the node list .*nope\.csv/],
    ['a missing pod file', ['--nodes', NODES, '--pods', join(dir, 'nope.csv')], /cannot read the pod list .*nope\.csv/],
    ['an unknown policy', ['--nodes', NODES, '--pods', PODS, '--policy', 'fastest'], /--policy: .*"fastest" is not a policy/],
    ['a backwards seed range', ['--nodes', NODES, '--pods', PODS, '--seeds', '51-42'], /--seeds: .*runs backwards/],
    ['a malformed seed list', ['--nodes', NODES, '--pods', PODS, '--seeds', '42-'], /--seeds: .*not a seed or range/],
    ['a malformed CSV row', ['--nodes', NODES, '--pods', BAD_PODS], /sim-pods-bad\.csv line 7: gpu_milli "half" is not a whole number/],
    ['a CSV without the needed columns', ['--nodes', PODS, '--pods', PODS], /missing column\(s\) sn/],
    ['an unknown isolation', ['--nodes', NODES, '--pods', PODS, '--isolation', 'mig'], /--isolation: "mig" is not one of time-slice, sm-partition/],
  ])('%s: one line on stderr, exit 2', (_name, args, message) => {
    const r = runCli(['simulate', ...args]);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gpushare: /);
    expect(lines[0]).toMatch(message);
  });
});
