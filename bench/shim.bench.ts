// libgpushare's overhead on the fake driver (issue 3): cuMemAlloc_v2+cuMemFree_v2 latency and
// cuLaunchKernel rate, each measured by build/native/shim/tests/shim_bench with and without
// LD_PRELOAD=build/native/libgpushare.so, the two interleaved round by round (so drift hits
// both alike), medians compared as a ratio. The fake hands freed ranges back ("reuseFreed"),
// so an allocation costs a mutex and a list walk rather than an mmap and the library's share
// is visible. Real-GPU numbers: scripts/gpu-check-memory.sh.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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

const rounds = Number(process.env.SHIM_BENCH_ROUNDS ?? 9);
type Case = { name: string; args: string[]; key: string; higherIsBetter: boolean; budget: string };
const cases: Case[] = [
  { name: 'cuMemAlloc_v2 + cuMemFree_v2 (1 MiB), ns per pair', args: ['alloc', '200000', '1048576'], key: 'alloc_free_ns', higherIsBetter: false, budget: '-' },
  { name: 'cuLaunchKernel, launches/s', args: ['launch', '100000'], key: 'launches_per_s', higherIsBetter: true, budget: '<= 2% slower' },
];

function once(c: Case, preload: boolean): number {
  const env = {
    ...process.env,
    LD_LIBRARY_PATH: `${root}fake`,
    GPUSHARE_FAKE_CUDA: '{"reuseFreed": true, "contextBytes": 4194304}',
    GPUSHARE_MEMORY_LIMIT: '8Gi',
    LD_PRELOAD: preload ? lib : '',
  };
  const r = spawnSync(bin, c.args, { encoding: 'utf8', env });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const value = (JSON.parse(line) as Record<string, number>)[c.key];
  if (r.status !== 0 || typeof value !== 'number') throw new Error(`shim_bench ${c.args.join(' ')}: ${line} ${r.stderr}`);
  return value;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};

console.log(`libgpushare on the fake driver: ${rounds} interleaved rounds per case, medians`);
console.log('| case | without library | with library | with / without | library is slower by | budget |');
console.log('| --- | --- | --- | --- | --- | --- |');
for (const c of cases) {
  const without: number[] = [];
  const withLib: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // alternate which goes first, so warm caches favour neither
    if (i % 2 === 0) {
      without.push(once(c, false));
      withLib.push(once(c, true));
    } else {
      withLib.push(once(c, true));
      without.push(once(c, false));
    }
  }
  const a = median(without);
  const b = median(withLib);
  const slower = c.higherIsBetter ? a / b - 1 : b / a - 1;
  console.log(`| ${c.name} | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(3)} | ${(100 * slower).toFixed(1)}% | ${c.budget} |`);
}
