// The compute governor's cost on the launch path (issue 4), on the fake driver: cuLaunchKernel
// rate of build/native/shim/tests/shim_bench (100,000 empty kernels, then a synchronize) without
// the library, with it and no compute limit (the fast path), and with GPUSHARE_COMPUTE_LIMIT=100
// (every step of the gate runs and it never has to wait: the gate's own work: the clock, the
// layout, marker events every 250 us). A launch loop keeps even the fake's queue busy all the
// time (its events are timestamped on a timeline that advances with the enqueue time), so a lower
// limit would throttle it: that is the limit working, not overhead.
// Runs interleaved round by round (drift hits all alike); medians compared as ratios to the run
// without the library. Fake-driver numbers, not GPU numbers: scripts/gpu-check-compute.sh
// measures the same on a real GPU.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../build/native/', import.meta.url));
const bin = `${root}shim/tests/shim_bench`;
const lib = `${root}libgpushare.so`;
for (const f of [bin, lib]) {
  if (!existsSync(f)) {
    console.error(`${f} is missing: build it with \`npm run build\``);
    process.exit(2);
  }
}

const rounds = Number(process.env.COMPUTE_BENCH_ROUNDS ?? 9);
const launches = process.env.COMPUTE_BENCH_LAUNCHES ?? '100000';
const board = mkdtempSync(join(tmpdir(), 'gpushare-compute-bench-'));
type Variant = { name: string; env: Record<string, string> };
const variants: Variant[] = [
  { name: 'no library', env: { LD_PRELOAD: '' } },
  { name: 'library, no compute limit', env: { LD_PRELOAD: lib } },
  { name: 'library, GPUSHARE_COMPUTE_LIMIT=100 (the gate, never waiting)', env: { LD_PRELOAD: lib, GPUSHARE_COMPUTE_LIMIT: '100', GPUSHARE_COMPUTE_DIR: board } },
];

function once(v: Variant): number {
  const env = { ...process.env, LD_LIBRARY_PATH: `${root}fake`, GPUSHARE_FAKE_CUDA: '{"contextBytes": 4194304}', GPUSHARE_LOG_LEVEL: 'error', ...v.env };
  const r = spawnSync(bin, ['launch', launches], { encoding: 'utf8', env });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const value = (JSON.parse(line) as Record<string, number>)['launches_per_s'];
  if (r.status !== 0 || typeof value !== 'number') throw new Error(`shim_bench launch: ${line} ${r.stderr}`);
  return value;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};

try {
  const results = variants.map(() => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    // rotate which variant goes first, so warm caches favour none
    for (let j = 0; j < variants.length; j++) {
      const k = (i + j) % variants.length;
      const v = variants[k];
      if (v !== undefined) results[k]?.push(once(v));
    }
  }
  const base = median(results[0] ?? []);
  console.log(`compute governor on the fake driver (NOT a GPU): cuLaunchKernel x ${launches}, ${rounds} interleaved rounds, medians`);
  console.log('| variant | launches/s | vs no library | slower by | budget |');
  console.log('| --- | --- | --- | --- | --- |');
  variants.forEach((v, k) => {
    const m = median(results[k] ?? []);
    const budget = k === 0 ? '-' : '<= 2% slower';
    console.log(`| ${v.name} | ${m.toFixed(0)} | ${(m / base).toFixed(3)} | ${(100 * (base / m - 1)).toFixed(1)}% | ${budget} |`);
  });
} finally {
  rmSync(board, { recursive: true, force: true });
}
