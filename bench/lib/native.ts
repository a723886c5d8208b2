// Shared by the benchmarks that time a native program (build/native/shim/tests/shim_bench) on the
// fake driver with and without LD_PRELOAD=libgpushare.so: where the build lives, one run's JSON
// result, interleaved rounds and their medians.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const nativeRoot = fileURLToPath(new URL('../../build/native/', import.meta.url));
export const shimBench = `${nativeRoot}shim/tests/shim_bench`;
export const shimLib = `${nativeRoot}libgpushare.so`;

/** Exits 2 with a hint when the native build these benchmarks run is missing. */
export function requireNativeBuild(): void {
  for (const f of [shimBench, shimLib]) {
    if (!existsSync(f)) {
      console.error(`${f} is missing: build it with \`npm run build\``);
      process.exit(2);
    }
  }
}

/**
 * One run of shim_bench against the fake driver, `env` added to this process's: the number under
 * `key` in the JSON object on its last line of output.
 */
export function runShimBench(args: string[], key: string, env: Record<string, string>): number {
  const r = spawnSync(shimBench, args, { encoding: 'utf8', env: { ...process.env, LD_LIBRARY_PATH: `${nativeRoot}fake`, ...env } });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const value = (JSON.parse(line) as Record<string, number>)[key];
  if (r.status !== 0 || typeof value !== 'number') throw new Error(`shim_bench ${args.join(' ')}: ${line} ${r.stderr}`);
  return value;
}

/**
 * `rounds` rounds of run(0) .. run(count - 1), the starting variant rotating round by round so
 * drift and warm caches favour none; results[k] holds variant k's values.
 */
export function interleaved(rounds: number, count: number, run: (k: number) => number): number[][] {
  const results = Array.from({ length: count }, () => [] as number[]);
  for (let i = 0; i < rounds; i++) {
    for (let j = 0; j < count; j++) {
      const k = (i + j) % count;
      results[k]?.push(run(k));
    }
  }
  return results;
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};
