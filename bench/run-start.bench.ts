// Time from `gpushare run` to the task's first instruction, against launching the same program
// directly (issue 6). The program is a few lines of C that prints CLOCK_REALTIME at the top of
// main(); the clock read when the launch began is subtracted, so how its output travels back
// (task log, logs follow) does not count. Rounds alternate the variants so drift hits all alike;
// medians over ROUNDS. The daemon runs on the simulated backend on a Unix socket, as locally.
//
// Variants: direct spawn; `gpushare run --gpus 0` (CPU-only task: CLI start, submit, daemon
// launch through gpushare-exec); `gpushare run --mem 1Gi` (a slice of the simulated GPU: also
// placement, the slice environment and libgpushare preloaded); and the CLI's own start-up
// (`gpushare --version` to exit) for scale. With RUN_BENCH_BASELINE=/other/checkout/bin/gpushare.js
// the two CLI variants also run through that build, alternated with the rest.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from './lib/native.js';

const ROUNDS = Number(process.env['RUN_BENCH_ROUNDS'] ?? 15);
const root = fileURLToPath(new URL('../', import.meta.url));
const bin = `${root}bin/gpushare.js`;
/** RUN_BENCH_BASELINE: the bin/gpushare.js of another checkout, timed alongside this one. */
const baseline = process.env['RUN_BENCH_BASELINE'];
const dir = mkdtempSync(join(tmpdir(), 'gpushare-run-bench-'));
const socket = join(dir, 'api.sock');

const src = join(dir, 'stamp.c');
const prog = join(dir, 'stamp');
writeFileSync(src, '#include <stdio.h>\n#include <time.h>\nint main(void) { struct timespec t; clock_gettime(CLOCK_REALTIME, &t); printf("%lld\\n", (long long)t.tv_sec * 1000000000LL + t.tv_nsec); return 0; }\n');
const cc = spawnSync('cc', ['-O2', '-o', prog, src], { encoding: 'utf8' });
if (cc.status !== 0) {
  console.error(`cannot build the stamp program: ${cc.stderr}`);
  process.exit(2);
}

const nowNs = (): number => (performance.timeOrigin + performance.now()) * 1e6;

/** Submits straight to the API over the socket (no CLI); ms from the request to the program's stamp. */
async function viaApi(body: Record<string, unknown>): Promise<number> {
  const call = (method: string, path: string, payload?: unknown): Promise<string> =>
    new Promise((resolve, reject) => {
      const req = request({ socketPath: socket, method, path, headers: payload === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString()));
        res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve(text) : reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`))));
      });
      req.on('error', reject);
      req.end(payload === undefined ? undefined : JSON.stringify(payload));
    });
  const t0 = nowNs();
  const { id } = JSON.parse(await call('POST', '/v1/tasks', { command: [prog], cwd: dir, ...body })) as { id: string };
  const out = await call('GET', `/v1/tasks/${id}/logs?follow=1&stream=stdout`);
  const stamp = Number(out.trim());
  if (!Number.isFinite(stamp)) throw new Error(`no stamp from task ${id}: ${out}`);
  return (stamp - t0) / 1e6;
}

/** Runs argv; returns ms from the launch to the program's own stamp (or to exit, for `exitOnly`). */
function once(argv: readonly string[], env: NodeJS.ProcessEnv, exitOnly = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = nowNs();
    const child = spawn(argv[0] ?? '', argv.slice(1), { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${argv.join(' ')} exited ${code}: ${err}`));
      if (exitOnly) return resolve((nowNs() - t0) / 1e6);
      const stamp = Number(out.trim().split('\n').pop());
      if (!Number.isFinite(stamp)) return reject(new Error(`no stamp from ${argv.join(' ')}: ${out} ${err}`));
      resolve((stamp - t0) / 1e6);
    });
  });
}

const env: NodeJS.ProcessEnv = { ...process.env, GPUSHARE_HOST: socket };
for (const k of Object.keys(env)) if (k.startsWith('GPUSHARE_') && k !== 'GPUSHARE_HOST') delete env[k];
let daemon: ChildProcess | null = null;
try {
  daemon = spawn(process.execPath, [bin, 'serve', '--backend', 'simulated', '--simulate', '1xH100-80GB', '--state-dir', join(dir, 'state'), '--listen', socket, '--log-level', 'warn'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let text = '';
    daemon?.stderr?.on('data', (b: Buffer) => {
      text += b.toString();
      if (text.includes('listening on')) resolve();
    });
    daemon?.once('exit', (code) => reject(new Error(`daemon exited ${code}: ${text}`)));
  });
  const variants: { name: string; argv: string[]; exitOnly?: boolean; api?: Record<string, unknown> }[] = [
    { name: 'direct spawn', argv: [prog] },
    { name: 'POST /v1/tasks, no CLI (CPU-only task)', argv: [], api: { gpus: 0 } },
    { name: 'POST /v1/tasks, no CLI (GPU slice, libgpushare preloaded)', argv: [], api: { memory: '1Gi' } },
    { name: 'gpushare run --gpus 0 (CPU-only task)', argv: [process.execPath, bin, 'run', '--gpus', '0', '--', prog] },
    { name: 'gpushare run --mem 1Gi (GPU slice, libgpushare preloaded)', argv: [process.execPath, bin, 'run', '--mem', '1Gi', '--', prog] },
    { name: 'gpushare --version (CLI start-up to exit, for scale)', argv: [process.execPath, bin, '--version'], exitOnly: true },
    // Another build of the CLI (e.g. main's) against the same daemon, for a side-by-side ratio.
    ...(baseline
      ? [
          { name: 'baseline CLI: gpushare run --gpus 0', argv: [process.execPath, baseline, 'run', '--gpus', '0', '--', prog] },
          { name: 'baseline CLI: gpushare --version', argv: [process.execPath, baseline, '--version'], exitOnly: true },
        ]
      : []),
  ];
  const times = variants.map(() => [] as number[]);
  const measure = (v: (typeof variants)[number]): Promise<number> => (v.api ? viaApi(v.api) : once(v.argv, env, v.exitOnly));
  for (const v of variants) await measure(v); // warm caches
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 === 0 ? variants.map((_, i) => i) : variants.map((_, i) => variants.length - 1 - i);
    for (const i of order) {
      const v = variants[i];
      if (v) times[i]?.push(await measure(v));
    }
  }
  const direct = median(times[0] ?? []);
  console.log(`Launch to the program's first instruction: median of ${ROUNDS} alternated rounds, ms (simulated backend, Unix socket)`);
  console.log('| variant | median | min | max | vs direct |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const [i, v] of variants.entries()) {
    const t = times[i] ?? [];
    console.log(`| ${v.name} | ${median(t).toFixed(2)} | ${Math.min(...t).toFixed(2)} | ${Math.max(...t).toFixed(2)} | ${(median(t) / direct).toFixed(1)}x |`);
  }
} finally {
  daemon?.kill('SIGTERM');
  if (daemon && daemon.exitCode === null) await new Promise((r) => daemon?.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
