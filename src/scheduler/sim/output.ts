/**
 * What `gpushare simulate` writes, as pure functions of replay results: the placements CSV,
 * the JSON document, the summary table and the HTML report. The command only does the I/O.
 */
import { fail, ok, type Result } from '../../domain/index.js';
import type { FailureKind, ReplayResult } from './replay.js';

export const PLACEMENTS_HEADER = 'seq,pod,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,node,gpu_indexes';

/** Parses `42`, `42-51`, `1,5,9` or a mix (`1,10-12`) into a list of seeds. */
export function parseSeeds(text: string): Result<number[]> {
  const seeds: number[] = [];
  for (const part of text.split(',').map((s) => s.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return fail('seeds', 'malformed', `"${part}" is not a seed or range; expected e.g. 42, 42-51 or 1,2,3`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return fail('seeds', 'outOfRange', `range "${part}" runs backwards`);
    if (to - from > 10_000) return fail('seeds', 'outOfRange', `range "${part}" has more than 10,000 seeds`);
    for (let s = from; s <= to; s++) seeds.push(s);
  }
  return ok(seeds);
}

/** The placements CSV of one run: one row per arriving pod, in arrival order. */
export function placementsCsv(result: ReplayResult): string {
  const lines = [PLACEMENTS_HEADER];
  for (const r of result.records ?? []) {
    const p = r.pod;
    lines.push([r.seq, p.name, p.cpuMilli, p.memoryMib, p.numGpu, p.gpuMilli, p.gpuSpec, r.node ?? '', r.gpus.join(';')].join(','));
  }
  return lines.join('\n') + '\n';
}

export interface PolicySummary {
  readonly policy: string;
  readonly runs: number;
  /** Mean allocation % at 100% and at `inflate` x 100% (130%) arrived, and their spread over seeds. */
  readonly meanAt100: number | null;
  readonly minAt100: number | null;
  readonly maxAt100: number | null;
  readonly meanAtInflate: number;
  readonly meanFragmentationAt100: number | null;
  readonly failures: Readonly<Partial<Record<FailureKind, number>>>;
}

function mean(xs: readonly number[]): number | null {
  return xs.length === 0 ? null : xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Per-policy means over seeds, in the order policies first appear. */
export function summarize(results: readonly ReplayResult[]): PolicySummary[] {
  const by = new Map<string, ReplayResult[]>();
  for (const r of results) {
    const list = by.get(r.policy);
    if (list) list.push(r);
    else by.set(r.policy, [r]);
  }
  return [...by].map(([policy, runs]) => {
    const at100 = runs.map((r) => r.allocatedAt100).filter((x): x is number => x !== null);
    const frag = runs.map((r) => r.fragmentationAt100).filter((x): x is number => x !== null);
    const failures: Partial<Record<FailureKind, number>> = {};
    for (const r of runs) {
      for (const [k, n] of Object.entries(r.failures) as [FailureKind, number][]) failures[k] = (failures[k] ?? 0) + n / runs.length;
    }
    return {
      policy,
      runs: runs.length,
      meanAt100: mean(at100),
      minAt100: at100.length ? Math.min(...at100) : null,
      maxAt100: at100.length ? Math.max(...at100) : null,
      meanAtInflate: mean(runs.map((r) => r.allocatedAtInflate)) ?? 0,
      meanFragmentationAt100: mean(frag),
      failures,
    };
  });
}

const fmt = (x: number | null, digits = 2): string => (x === null ? '-' : x.toFixed(digits));

/** The table people read. */
export function summaryTable(summaries: readonly PolicySummary[], inflate: number): string {
  const end = `${Math.round(inflate * 100)}%`;
  const header = ['policy', 'seeds', 'alloc@100%', 'min-max', `alloc@${end}`, 'frag@100%', 'failures/run (reason: count)'];
  const rows = summaries.map((s) => [
    s.policy,
    String(s.runs),
    fmt(s.meanAt100),
    `${fmt(s.minAt100)}-${fmt(s.maxAt100)}`,
    fmt(s.meanAtInflate),
    fmt(s.meanFragmentationAt100, 1),
    Object.entries(s.failures)
      .map(([k, n]) => `${k}: ${Math.round(n)}`)
      .join(', ') || 'none',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

/** The machine-readable document (`--json`). */
export function jsonDocument(meta: { nodes: string; pods: string; inflate: number; seeds: readonly number[] }, results: readonly ReplayResult[]): unknown {
  return {
    version: 1,
    ...meta,
    runs: results.map((r) => ({
      policy: r.policy,
      seed: r.seed,
      pods: r.pods,
      capacityGpus: r.capacityGpus,
      allocatedAt100: r.allocatedAt100,
      allocatedAt130: r.allocatedAtInflate,
      allocatedAtEnd: r.allocatedAtEnd,
      arrivedAtEnd: r.arrivedAtEnd,
      fragmentationAt100: r.fragmentationAt100,
      fragmentationAtEnd: r.fragmentationAtEnd,
      failures: r.failures,
    })),
    summary: summarize(results),
  };
}

/** Allocation % at each whole arrived % from 0 to the end, averaged over a policy's seeds. */
export function meanCurve(runs: readonly ReplayResult[]): { arrived: number; allocated: number }[] {
  const top = Math.floor(Math.min(...runs.map((r) => r.arrivedAtEnd)));
  const out: { arrived: number; allocated: number }[] = [];
  const cursors = runs.map(() => 0);
  for (let a = 0; a <= top; a++) {
    let sum = 0;
    runs.forEach((r, k) => {
      let c = cursors[k] ?? 0;
      while (c < r.curve.length - 1 && (r.curve[c]?.arrived ?? 0) < a) c += 1;
      cursors[k] = c;
      sum += r.curve[c]?.allocated ?? 0;
    });
    out.push({ arrived: a, allocated: sum / runs.length });
  }
  return out;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c);
}

/** A self-contained page: the allocation curves of the policies compared, and the summary table. */
export function reportHtml(title: string, results: readonly ReplayResult[], inflate: number): string {
  const summaries = summarize(results);
  const W = 760;
  const H = 420;
  const pad = 50;
  const xMax = Math.ceil(inflate * 100);
  const x = (a: number): number => pad + ((W - 2 * pad) * a) / xMax;
  const y = (v: number): number => H - pad - ((H - 2 * pad) * v) / 100;
  const lines = summaries.map((s, i) => {
    const curve = meanCurve(results.filter((r) => r.policy === s.policy));
    const d = curve.map((p, k) => `${k === 0 ? 'M' : 'L'}${x(p.arrived).toFixed(1)},${y(p.allocated).toFixed(1)}`).join(' ');
    const color = COLORS[i % COLORS.length];
    return `<path d="${d}" fill="none" stroke="${color}" stroke-width="2"/><text x="${W - pad + 5}" y="${pad + 16 * i}" fill="${color}" font-size="12">${escapeHtml(s.policy)}</text>`;
  });
  const ticks: string[] = [];
  for (let a = 0; a <= xMax; a += 10) ticks.push(`<line x1="${x(a)}" y1="${y(0)}" x2="${x(a)}" y2="${y(100)}" stroke="#eee"/><text x="${x(a)}" y="${H - pad + 16}" font-size="11" text-anchor="middle">${a}</text>`);
  for (let v = 0; v <= 100; v += 10) ticks.push(`<line x1="${x(0)}" y1="${y(v)}" x2="${x(xMax)}" y2="${y(v)}" stroke="#eee"/><text x="${pad - 6}" y="${y(v) + 4}" font-size="11" text-anchor="end">${v}</text>`);
  const rows = summaries
    .map((s) => `<tr><td>${escapeHtml(s.policy)}</td><td>${s.runs}</td><td>${fmt(s.meanAt100)}</td><td>${fmt(s.meanAtInflate)}</td><td>${fmt(s.meanFragmentationAt100, 1)}</td></tr>`)
    .join('');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>
</head><body>
<h1>${escapeHtml(title)}</h1>
<p>Allocated GPU (% of capacity) against arrived GPU demand (% of capacity), mean over seeds.</p>
<svg width="${W + 120}" height="${H}" xmlns="http://www.w3.org/2000/svg">
${ticks.join('\n')}
<line x1="${x(0)}" y1="${y(0)}" x2="${x(100)}" y2="${y(100)}" stroke="#bbb" stroke-dasharray="4 4"/>
${lines.join('\n')}
<text x="${W / 2}" y="${H - 10}" font-size="12" text-anchor="middle">arrived %</text>
<text x="14" y="${H / 2}" font-size="12" transform="rotate(-90 14 ${H / 2})" text-anchor="middle">allocated %</text>
</svg>
<table><tr><th>policy</th><th>seeds</th><th>alloc@100%</th><th>alloc@${Math.round(inflate * 100)}%</th><th>frag@100%</th></tr>${rows}</table>
</body></html>
`;
}
