// libgpushare's overhead on the fake driver (issue 3): cuMemAlloc_v2+cuMemFree_v2 latency and
// cuLaunchKernel rate, each measured by build/native/shim/tests/shim_bench with and without
// LD_PRELOAD=build/native/libgpushare.so, the two interleaved round by round (so drift hits
// both alike), medians compared as a ratio. The fake hands freed ranges back ("reuseFreed"),
// so an allocation costs a mutex and a list walk rather than an mmap and the library's share
// is visible. Real-GPU numbers: scripts/gpu-check-memory.sh.
import { interleaved, median, requireNativeBuild, runShimBench, shimLib } from './lib/native.js';

requireNativeBuild();
const rounds = Number(process.env.SHIM_BENCH_ROUNDS ?? 9);
type Case = { name: string; args: string[]; key: string; higherIsBetter: boolean; budget: string };
const cases: Case[] = [
  { name: 'cuMemAlloc_v2 + cuMemFree_v2 (1 MiB), ns per pair', args: ['alloc', '200000', '1048576'], key: 'alloc_free_ns', higherIsBetter: false, budget: '-' },
  { name: 'cuLaunchKernel, launches/s', args: ['launch', '100000'], key: 'launches_per_s', higherIsBetter: true, budget: '<= 2% slower' },
];

function once(c: Case, preload: boolean): number {
  return runShimBench(c.args, c.key, {
    GPUSHARE_FAKE_CUDA: '{"reuseFreed": true, "contextBytes": 4194304}',
    GPUSHARE_MEMORY_LIMIT: '8Gi',
    LD_PRELOAD: preload ? shimLib : '',
  });
}

console.log(`libgpushare on the fake driver: ${rounds} interleaved rounds per case, medians`);
console.log('| case | without library | with library | with / without | library is slower by | budget |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const c of cases) {
  const [without = [], withLib = []] = interleaved(rounds, 2, (k) => once(c, k === 1));
  const a = median(without);
  const b = median(withLib);
  const slower = c.higherIsBetter ? a / b - 1 : b / a - 1;
  console.log(`| ${c.name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(3)} | ${(100 * slower).toFixed(1)}% | ${c.budget} |`);
}
