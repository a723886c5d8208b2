// The compute governor's cost on the launch path (issue 4), on the fake driver: cuLaunchKernel
// rate of build/native/shim/tests/shim_bench (1,000,000 empty kernels, then a synchronize) without
// the library, with it and no compute limit (the fast path), and with GPUSHARE_COMPUTE_LIMIT=100
// (every step of the gate runs and it never has to wait: the gate's own work: the clock, the
// layout, marker events every 250 us). A launch loop keeps even the fake's queue busy all the
// time (its events are timestamped on a timeline that advances with the enqueue time), so a lower
// limit would throttle it: that is the limit working, not overhead.
// The fake runs with "inlineLaunch" (FAKE_CUDA.md): an empty kernel onto an idle stream completes
// inside the call, so a fake launch costs a few hundred ns (its bookkeeping) instead of a worker
// thread's wake-up, and the library's own ns per launch show in the ratios (they are therefore
// larger than on a GPU, where a launch costs about 3 us). COMPUTE_BENCH_BASE_LIB=<path of another
// libgpushare.so> adds that build's gate as a variant (before/after a change, side by side).
// Runs interleaved round by round (drift hits all alike); medians and bests compared as ratios to
// the run without the library. Fake-driver numbers, not GPU numbers: scripts/gpu-check-compute.sh
// measures the same on a real GPU.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { interleaved, median, requireNativeBuild, runShimBench, shimLib as lib } from './lib/native.js';

requireNativeBuild();
const rounds = Number(process.env.COMPUTE_BENCH_ROUNDS ?? 11);
const launches = process.env.COMPUTE_BENCH_LAUNCHES ?? '1000000';
const baseLib = process.env.COMPUTE_BENCH_BASE_LIB;
const board = mkdtempSync(join(tmpdir(), 'gpushare-compute-bench-'));
type Variant = { name: string; env: Record<string, string> };
const variants: Variant[] = [
  { name: 'no library', env: { LD_PRELOAD: '' } },
  { name: 'library, no compute limit', env: { LD_PRELOAD: lib } },
  { name: 'library, GPUSHARE_COMPUTE_LIMIT=100 (the gate, never waiting)', env: { LD_PRELOAD: lib, GPUSHARE_COMPUTE_LIMIT: '100', GPUSHARE_COMPUTE_DIR: board } },
];
if (baseLib !== undefined && baseLib !== '') {
  if (!existsSync(baseLib)) {
    console.error(`COMPUTE_BENCH_BASE_LIB=${baseLib} does not exist`);
    process.exit(2);
  }
  variants.push({ name: `${baseLib}, GPUSHARE_COMPUTE_LIMIT=100`, env: { LD_PRELOAD: baseLib, GPUSHARE_COMPUTE_LIMIT: '100', GPUSHARE_COMPUTE_DIR: board } });
}

function once(v: Variant): number {
  return runShimBench(['launch', launches], 'launches_per_s', { GPUSHARE_FAKE_CUDA: '{"contextBytes": 4194304, "inlineLaunch": true}', GPUSHARE_LOG_LEVEL: 'error', ...v.env });
}

try {
  const results = interleaved(rounds, variants.length, (k) => {
    const v = variants[k];
    if (v === undefined) throw new Error(`no variant ${k}`);
    return once(v);
  });
  const base = median(results[0] ?? []);
  const baseBest = Math.max(...(results[0] ?? []));
  console.log(`compute governor on the fake driver (NOT a GPU, inlineLaunch): cuLaunchKernel x ${launches}, ${rounds} interleaved rounds`);
  console.log('| variant | launches/s (median) | vs no library | best | vs no library (best) | ns per launch over no library (median) |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  variants.forEach((v, k) => {
    const m = median(results[k] ?? []);
    const b = Math.max(...(results[k] ?? []));
    const ns = k === 0 ? '-' : (1e9 / m - 1e9 / base).toFixed(0);
    console.log(`| ${v.name} | ${m.toFixed(0)} | ${(m / base).toFixed(3)} | ${b.toFixed(0)} | ${(b / baseBest).toFixed(3)} | ${ns} |`);
  });
  abSection();
} finally {
  rmSync(board, { recursive: true, force: true });
}

// The same cost measured inside one process (shim_bench launch_ab: batches of 1,000 launches
// alternately through the fake's own cuLaunchKernel and through the hooked one, the median of
// 200 pairs' differences): separate processes vary far more than the few ns compared here. With
// the fake's "launchTouchBytes" each launch walks 64 KiB of scratch memory, evicting the
// caller's cache lines as a real driver's launch does, so the gate's cold-cache cost shows
// (on an H200 the same program measured 80-130 ns for the gate before its fields were packed).
function abSection(): void {
  const runs = Number(process.env.COMPUTE_BENCH_AB_RUNS ?? 5);
  const abVariants = variants.slice(1);
  for (const touch of [0, 65536]) {
    const fake = JSON.stringify({ contextBytes: 4194304, inlineLaunch: true, launchTouchBytes: touch });
    const results = interleaved(runs, abVariants.length, (k) => {
      const v = abVariants[k];
      if (v === undefined) throw new Error(`no variant ${k}`);
      return runShimBench(['launch_ab', '200'], 'added_ns', { GPUSHARE_FAKE_CUDA: fake, GPUSHARE_LOG_LEVEL: 'error', ...v.env });
    });
    console.log(`\nin one process, fake driver (NOT a GPU), launchTouchBytes ${touch}: ns a launch through the hook adds (median of ${runs} runs, each the median of 200 pairs)`);
    console.log('| variant | added ns (median) | runs |');
    console.log('| --- | --- | --- |');
    abVariants.forEach((v, k) => {
      const xs = results[k] ?? [];
      console.log(`| ${v.name} | ${median(xs).toFixed(1)} | ${xs.map((x) => x.toFixed(0)).join(', ')} |`);
    });
  }
}
