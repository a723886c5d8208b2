// A claim's (or a served container's) directory on the node plugins' path (session 25): made at
// prepare / Allocate (mkdir + chmod 1777), and at unprepare / a pod's deletion either removed
// (`rm -r`, what the plugins did before session 25) or renamed away into a sibling `gone/` (what
// they do now: cdi/gone-dirs.ts, the removal later, off the call's path). Each directory holds a
// 4 KiB file, as a region would. Per round, DIRS directories each way, the ways interleaved
// directory by directory, in a temporary directory of `--dir` (default the OS's, ext4 here) and of
// `--tmpfs` (default /dev/shm, where one exists); per round p50 and p99, then the median of the
// rounds (and their range). Usage:
//   node --import tsx bench/claim-dir.bench.ts [--rounds 5] [--dirs 400] [--dir /tmp] [--tmpfs /dev/shm]
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const ROUNDS = Number(opt('--rounds', '5'));
const DIRS = Number(opt('--dirs', '400'));
const roots = [opt('--dir', tmpdir()), opt('--tmpfs', '/dev/shm')].filter((r, i) => i === 0 || existsSync(r));

const q = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
};
const ops = ['mkdir + chmod', 'rm -r', 'rename into gone/'] as const;
type Op = (typeof ops)[number];

for (const root of roots) {
  const base = mkdtempSync(join(root, 'gs-claim-dir-'));
  mkdirSync(join(base, 'claims'));
  mkdirSync(join(base, 'gone'));
  const perRound = Object.fromEntries(ops.map((op) => [op, { p50: [] as number[], p99: [] as number[] }])) as Record<Op, { p50: number[]; p99: number[] }>;
  try {
    for (let r = -1; r < ROUNDS; r++) { // round -1 warms up
      const t: Record<Op, number[]> = { 'mkdir + chmod': [], 'rm -r': [], 'rename into gone/': [] };
      for (let i = 0; i < DIRS; i++) {
        for (const way of i % 2 === 0 ? (['rm', 'rename'] as const) : (['rename', 'rm'] as const)) {
          const dir = join(base, 'claims', `u-${r}-${i}-${way}`);
          let t0 = performance.now();
          mkdirSync(dir, { recursive: true });
          chmodSync(dir, 0o1777);
          t['mkdir + chmod'].push(performance.now() - t0);
          writeFileSync(join(dir, 'region'), Buffer.alloc(4096));
          t0 = performance.now();
          if (way === 'rm') {
            rmSync(dir, { recursive: true, force: true });
            t['rm -r'].push(performance.now() - t0);
          } else {
            renameSync(dir, join(base, 'gone', `u-${r}-${i}`));
            t['rename into gone/'].push(performance.now() - t0);
          }
        }
      }
      rmSync(join(base, 'gone'), { recursive: true, force: true }); // between rounds, untimed
      mkdirSync(join(base, 'gone'));
      if (r < 0) continue;
      for (const op of ops) {
        perRound[op].p50.push(q(t[op], 0.5));
        perRound[op].p99.push(q(t[op], 0.99));
      }
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  const f = (xs: number[]): string => `${q(xs, 0.5).toFixed(3)} (${Math.min(...xs).toFixed(3)}-${Math.max(...xs).toFixed(3)})`;
  console.log(`claim directories under ${root}, ${ROUNDS} rounds x ${DIRS} directories each way, interleaved; ms, median of the rounds (range)`);
  console.log('| operation | p50 | p99 |');
  console.log('| --- | --- | --- |');
  for (const op of ops) console.log(`| ${op} | ${f(perRound[op].p50)} | ${f(perRound[op].p99)} |`);
}
