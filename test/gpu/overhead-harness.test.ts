/**
 * The overhead harness's method, without a GPU (issue 21 item 2): scripts/gpu/lockstep.py's
 * turns and pairing, its failures, the C side of its protocol (scripts/gpu/lockstep.h, which
 * bench_launch's lockstep mode uses), scripts/gpu/overhead_summary.py's table from lockstep and
 * process rounds, and scripts/gpu-check-overhead.sh end to end with a busy-loop worker whose
 * cost the test sets: a variant doing 5% more work must come out near +5% with a narrow
 * interval, the no-library control (none2) and the library variants (which cost a busy loop
 * nothing) near 0. Needs python3 and cc (both on the CI image, .ci/run) and build/native/libgpushare.so
 * (npm run build: the harness preloads it into the variants' workers).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const REPO = new URL('../../', import.meta.url).pathname;
const LOCKSTEP = join(REPO, 'scripts/gpu/lockstep.py');
const SUMMARY = join(REPO, 'scripts/gpu/overhead_summary.py');

let root: string;
let busy: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'gs-overhead-'));
  busy = join(root, 'lockstep-busy');
  const cc = spawnSync('cc', ['-O2', '-std=c11', '-Wall', '-Wextra', '-Werror', '-o', busy, join(REPO, 'test/fixtures/gpu/lockstep-busy.c')], {
    encoding: 'utf8',
  });
  if (cc.status !== 0) throw new Error(`cannot build the busy worker: ${cc.stderr || cc.error?.message}`);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

interface Round {
  control: string;
  variants: string[];
  pairs_per_variant: number;
  reps: Record<string, Record<string, Record<string, number>[]>>;
  pairs: Record<string, Record<string, [number, number][]>>;
  brief: string;
  error?: string;
}

/** lockstep.py run with these arguments: its exit status and its one JSON line. */
function lockstep(args: string[], env: Record<string, string> = {}): { status: number | null; out: Round; stderr: string } {
  const r = spawnSync('python3', [LOCKSTEP, 'run', ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 60_000 });
  const line = r.stdout.trim().split('\n').at(-1) ?? '';
  return { status: r.status, out: JSON.parse(line) as Round, stderr: r.stderr };
}

function python(code: string): string {
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8', cwd: join(REPO, 'scripts/gpu') });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.trim();
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

describe('lockstep.py: turns and pairs', () => {
  it('runs every process once per cycle, in orders that vary, never one process twice in a row', () => {
    const out = python(
      'import lockstep, json, collections; s = lockstep.schedule(["a", "b", "c"], 300, 7); ' +
        'cyc = [s[i:i + 4] for i in range(0, len(s), 4)]; ' +
        'prev = collections.Counter(s[i - 1] for i in range(1, len(s)) if s[i] == "C"); ' +
        'before = sum(1 for c in cyc if c.index("C") < c.index("a")); ' +
        'print(json.dumps({"n": len(s), "each": all(sorted(c) == ["C", "a", "b", "c"] for c in cyc), ' +
        '"repeat": any(s[i] == s[i - 1] for i in range(1, len(s))), "prev": prev, "before": before, ' +
        '"same": s == lockstep.schedule(["a", "b", "c"], 300, 7)}))',
    );
    const r = JSON.parse(out) as { n: number; each: boolean; repeat: boolean; prev: Record<string, number>; before: number; same: boolean };
    expect(r).toMatchObject({ n: 1200, each: true, repeat: false, same: true });
    // the control follows each variant about equally often, and runs before a variant about half the time
    for (const v of ['a', 'b', 'c']) expect(r.prev[v]).toBeGreaterThan(60);
    expect(r.before).toBeGreaterThan(110);
    expect(r.before).toBeLessThan(190);
  });

  it('keeps two processes alternating, C first and last', () => {
    expect(python('import lockstep; print(lockstep.schedule(["a"], 3, 0))')).toBe("['C', 'a', 'C', 'a', 'C', 'a', 'C']");
  });

  it("pairs a variant repetition with the control's of its cycle; with one variant before, then after it", () => {
    expect(python('import lockstep as l; s = l.schedule(["a", "b"], 3, 5); print(l.pairs_of(s, "a"), l.pairs_of(s, "b"))')).toBe(
      '[[0, 0], [1, 1], [2, 2]] [[0, 0], [1, 1], [2, 2]]',
    );
    // C a C a C a C: a's repetitions 0, 1, 2 with the control's 0 (before), 2 (after), 2 (before)
    expect(python('import lockstep as l; print(l.pairs_of(l.schedule(["a"], 3, 0), "a"))')).toBe('[[0, 0], [1, 2], [2, 2]]');
  });
});

describe('lockstep.py: a group of C workers (scripts/gpu/lockstep.h)', () => {
  // One process each (no pinning here): what differs between two processes (the core each lands
  // on) stays in a single group's ratio, so the bounds are wide; the harness test below pins.
  it('runs every turn, answers per workload, and sees a variant doing 25% more work', () => {
    const r = lockstep(['--workloads', 'launch,train', '--pairs', '12', 'none', busy, '300000', ':::', 'slow', busy, '300000', 'slow=1.25']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.out.variants).toEqual(['slow']);
    for (const w of ['launch', 'train']) {
      expect(r.out.reps[w]!.slow).toHaveLength(12);
      expect(r.out.reps[w]!.none).toHaveLength(13); // one more than the variant's: C first and last
      expect(r.out.reps[w]!.none!.every((m) => (m as unknown as { workload: string }).workload === w)).toBe(true);
      expect(r.out.pairs[w]!.slow).toHaveLength(12);
      const ratios = r.out.pairs[w]!.slow!.map(([i, j]) => r.out.reps[w]!.slow![i]!.cpu_s! / r.out.reps[w]!.none![j]!.cpu_s!);
      expect(median(ratios)).toBeGreaterThan(1.1);
      expect(median(ratios)).toBeLessThan(1.4);
    }
    expect(r.out.brief).toMatch(/^launch: slow \+\d+\.\d\d%; train: slow \+\d+\.\d\d%$/);
  });

  it('reports a worker that exits before answering, without waiting for the timeout', () => {
    const t0 = Date.now();
    const r = lockstep(['--workloads', 'launch', '--timeout', '50', 'none', busy, '1000', ':::', 'bad', 'false']);
    expect(r.status).toBe(1);
    expect(r.out.error).toMatch(/^bad: exited \(status 1\) without answering$/);
    expect(Date.now() - t0).toBeLessThan(20_000);
  });

  it('reports a worker that never answers once the timeout passes, and ends it', () => {
    const t0 = Date.now();
    const r = lockstep(['--workloads', 'launch', '--timeout', '1', 'none', busy, '1000', ':::', 'mute', 'sleep', '30']);
    expect(r.status).toBe(1);
    expect(r.out.error).toBe('mute: no answer within 1s');
    // ended, not waited for: the silent `sleep 30` would hold lockstep.py (and spawnSync) 30 s
    expect(Date.now() - t0).toBeLessThan(15_000);
  });

  it('reports an error a worker sends (an unknown workload) as the round failing', () => {
    const r = lockstep(['--workloads', 'nope', 'none', 'python3', LOCKSTEP, 'busy', ':::', 'v', 'python3', LOCKSTEP, 'busy']);
    expect(r.status).toBe(1);
    expect(r.out.error).toMatch(/: unknown request 'go nope'$/);
  });

  it('reports a worker command that cannot start, and ends the others', () => {
    const r = lockstep(['--workloads', 'launch', 'none', busy, '1000', ':::', 'gone', join(root, 'no-such-worker')]);
    expect(r.status).toBe(1);
    expect(r.out.error).toMatch(/^gone: cannot start .*no-such-worker: No such file or directory$/);
  });

  it('refuses a group without a variant, or a name given twice', () => {
    expect(lockstep(['--workloads', 'launch', 'none', busy, '1000']).out.error).toMatch(/need a control and at least one variant/);
    expect(lockstep(['--workloads', 'launch', 'none', busy, '1', ':::', 'none', busy, '1']).out.error).toMatch(/each named once/);
    expect(lockstep(['none', busy, '1', ':::', 'v', busy, '1']).out.error).toBe('--workloads is required');
  });

  it('the C side refuses a missing or malformed LOCKSTEP_FDS', () => {
    for (const fds of [undefined, '3', '3,', 'a,4', '3,4x']) {
      const env: Record<string, string | undefined> = { ...process.env, LOCKSTEP_FDS: fds };
      if (fds === undefined) delete env.LOCKSTEP_FDS;
      const r = spawnSync(busy, ['1000'], { encoding: 'utf8', env });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/^lockstep: LOCKSTEP_FDS (is not set|must be READ_FD,WRITE_FD)/);
    }
  });
});

/** A lockstep round's JSON line for the summary: per variant, its pairs' ratios (control reps of 1 us). */
function lockRound(round: number, ratios: Record<string, number[]>, controlScale = 1): string {
  const reps: Record<string, Record<string, number>[]> = { none: [] };
  const pairs: Record<string, [number, number][]> = {};
  for (const [v, rs] of Object.entries(ratios)) {
    reps[v] = [];
    pairs[v] = [];
    rs.forEach((r, k) => {
      const c = controlScale * 1e-6 * (1 + k); // control repetitions differ: the pairing must be by index
      reps.none!.push({ wall_s: c, cpu_s: c });
      reps[v]!.push({ wall_s: c * r, cpu_s: c * r });
      pairs[v]!.push([k, reps.none!.length - 1]);
    });
  }
  const data = { control: 'none', variants: Object.keys(ratios), workloads: ['launch'], pairs_per_variant: 3, reps: { launch: reps }, pairs: { launch: pairs } };
  return JSON.stringify({ kind: 'launch', round, mode: 'lockstep', data });
}

function summary(lines: string[]): string[] {
  const file = join(root, `raw-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(file, `${lines.join('\n')}\n`);
  const r = spawnSync('python3', [SUMMARY, file], { encoding: 'utf8', env: { ...process.env, OVERHEAD_RESAMPLES: '400' } });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout.split('\n');
}

/** The table's cells of the row starting with label, by column header. */
function row(out: string[], label: string): Record<string, string> {
  const split = (l: string): string[] => l.split('|').slice(1, -1).map((c) => c.trim());
  const head = split(out[0]!);
  const line = out.find((l) => l.startsWith(`| ${label} |`));
  if (!line) throw new Error(`no row ${label} in\n${out.join('\n')}`);
  return Object.fromEntries(split(line).map((c, i) => [head[i]!, c]));
}

describe('overhead_summary.py', () => {
  it("takes a lockstep round's ratio as the median of its pairs' ratios, paired by index", () => {
    const lines = [1, 2, 3, 4, 5].map((rd) =>
      // mem: one stalled repetition (2.0) in every round: the median ignores it (a ratio of sums would not)
      lockRound(rd, { mem: [1.0, 1.0, 2.0], memcompute: [1.03, 1.02, 1.04], none2: [0.99, 1.0, 1.01] }),
    );
    const out = summary(lines);
    const wall = row(out, 'empty kernel launch, wall');
    expect(wall['no library (median)']).toBe('2.000 us/launch (n=5)'); // the control repetitions: 1, 2, 3, 1, 2, ... us
    expect(wall['memory limit']).toBe('+0.00% [+0.00, +0.00] (n=5)');
    expect(wall['memory + compute 100%']).toBe('+3.00% [+3.00, +3.00] (n=5)');
    expect(wall['no library again (control)']).toBe('+0.00% [+0.00, +0.00] (n=5)');
    expect(wall['budget (limits set)']).toBe('<= 2%: memory limit: within, memory + compute 100%: over');
    expect(row(out, 'empty kernel launch, CPU time')['memory + compute 100%']).toBe('+3.00% [+3.00, +3.00] (n=5)');
    expect(out.some((l) => l.startsWith('Lockstep rows: a round\'s ratio is the median of its 3 paired repetitions'))).toBe(true);
    // pair spreads: mem's pairs 1.0, 1.0, 2.0 (IQR 0.5), memcompute's 1.02-1.04 (0.01), none2's 0.99-1.01
    // (0.01): the median 1.00 point; none2's round ratios all 0: 0.00
    expect(out.at(-2)).toMatch(/: empty kernel launch, wall 1\.00 \/ 0\.00; empty kernel launch, CPU time 1\.00 \/ 0\.00\.$/);
  });

  it('gives the median of the rounds and a bootstrap interval inside their range', () => {
    const per = [0.5, 1.5, 0.8, 1.2, 1.0, 0.9, 1.1, 0.7, 1.3, 1.05];
    const out = summary(per.map((p, i) => lockRound(i + 1, { mem: [1 + p / 100, 1 + p / 100, 1 + p / 100] })));
    const cell = row(out, 'empty kernel launch, wall')['memory limit']!;
    const m = /^\+(\d+\.\d\d)% \[\+(\d+\.\d\d), \+(\d+\.\d\d)\] \(n=10\)$/.exec(cell);
    expect(m, cell).not.toBeNull();
    const [med, lo, hi] = [Number(m![1]), Number(m![2]), Number(m![3])];
    expect(med).toBeCloseTo(1.025, 2);
    expect(lo).toBeGreaterThanOrEqual(0.5);
    expect(lo).toBeLessThanOrEqual(med);
    expect(hi).toBeGreaterThanOrEqual(med);
    expect(hi).toBeLessThanOrEqual(1.5);
    expect(row(out, 'empty kernel launch, wall')['budget (limits set)']).toBe('<= 2%: memory limit: within');
  });

  it('shows "-" under 3 rounds, and lists failed rounds', () => {
    const lines = [lockRound(1, { mem: [1.01, 1.01] }), lockRound(2, { mem: [1.01, 1.01] })];
    lines.push(JSON.stringify({ kind: 'launch', round: 3, mode: 'lockstep', data: { error: 'mem: exited (status 1) without answering' } }));
    const out = summary(lines);
    expect(row(out, 'empty kernel launch, wall')['memory limit']).toBe('-');
    expect(out).toContain('failed: launch lockstep round 3: mem: exited (status 1) without answering');
  });

  it('still reads process rounds (alloc_bench, older runs): the variant over the same round\'s none', () => {
    const lines: string[] = [];
    for (const rd of [1, 2, 3]) {
      lines.push(JSON.stringify({ kind: 'loops', round: rd, variant: 'none', data: { train_step_s: 0.01 * rd } }));
      lines.push(JSON.stringify({ kind: 'loops', round: rd, variant: 'mem', data: { train_step_s: 0.0102 * rd } }));
    }
    const r = row(summary(lines), 'training step (transformer, AdamW)');
    expect(r['no library (median)']).toBe('20.000 ms/step (n=3)');
    expect(r['memory limit']).toBe('+2.00% [+2.00, +2.00] (n=3)');
    expect(r['budget (limits set)']).toBe('<= 1%: memory limit: over');
  });
});

describe('gpu-check-overhead.sh end to end, a busy loop standing in for the GPU work', () => {
  it('finds a variant doing 5% more work at about +5% with a narrow interval, and no-cost variants near 0', () => {
    const out = join(root, 'harness');
    const r = spawnSync('bash', [join(REPO, 'scripts/gpu-check-overhead.sh')], {
      encoding: 'utf8',
      cwd: REPO,
      timeout: 300_000,
      env: {
        ...process.env,
        OUT: out,
        WORKLOADS: 'launch',
        ROUNDS: '10',
        MAX_ROUNDS: '10',
        LAUNCH_PAIRS: '16',
        LAUNCH_WORKER: `${busy} 600000 lib=1.05`,
      },
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toMatch(/^round 10: \d+s/m);
    const table = readFileSync(join(out, 'overhead.md'), 'utf8').split('\n');
    const cell = (label: string, col: string): [number, number, number] => {
      const c = row(table, label)[col]!;
      const m = /^([+-]\d+\.\d\d)% \[([+-]\d+\.\d\d), ([+-]\d+\.\d\d)\] \(n=10\)$/.exec(c);
      if (!m) throw new Error(`${label} / ${col}: ${c}`);
      return [Number(m[1]), Number(m[2]), Number(m[3])];
    };
    for (const label of ['empty kernel launch, wall', 'empty kernel launch, CPU time']) {
      const [med, lo, hi] = cell(label, 'library, no limits');
      expect(Math.abs(med - 5), `${label}: lib ${med}`).toBeLessThan(2);
      expect(lo, `${label}: lib [${lo}, ${hi}]`).toBeGreaterThan(1.5);
      expect(hi - lo, `${label}: lib [${lo}, ${hi}]`).toBeLessThan(5);
      for (const v of ['no library again (control)', 'memory limit', 'memory + compute 100%']) {
        const [m0, l0, h0] = cell(label, v);
        expect(Math.abs(m0), `${label}: ${v} ${m0} [${l0}, ${h0}]`).toBeLessThan(1.5);
        expect(h0 - l0, `${label}: ${v} [${l0}, ${h0}]`).toBeLessThan(5);
      }
    }
    const raw = readFileSync(join(out, 'overhead.jsonl'), 'utf8').trim().split('\n');
    expect(raw).toHaveLength(10);
  }, 320_000);
});
