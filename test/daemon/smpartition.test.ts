/**
 * isolation sm-partition through the real daemon (simulated H100s, 132 SMs, groups of 8, of which
 * the driver groups 120 as on the lent H200): each
 * partition gets its own SMs (GPUSHARE_SM_OFFSET), ranges free when tasks end, survive a
 * restart, and a partition that has no contiguous run of SMs waits. The MPS control daemon is
 * a fake `nvidia-cuda-mps-control` on PATH that records how it was called.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, sleep } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.cleanup();
});

/** A task that prints its slice's variables, then waits for the file `go-NAME`. */
function waiter(name: string): string[] {
  const go = join(h.dir, `go-${name}`);
  return ['--', 'sh', '-c', `env | grep -E '^(GPUSHARE_(ISOLATION|SM_OFFSET|COMPUTE_LIMIT)|CUDA_MPS_[A-Z_]+)=' | sort; echo ready; while [ ! -e ${go} ]; do sleep 0.02; done`];
}

function release(name: string): void {
  writeFileSync(join(h.dir, `go-${name}`), '');
}

/** The task's printed variables, once it has printed them. */
async function envOf(id: string): Promise<Record<string, string>> {
  const t = await h.waitFor(id, (x) => x.state === 'running');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const out = existsSync(t.stdoutPath) ? readFileSync(t.stdoutPath, 'utf8') : '';
    if (out.includes('ready\n')) {
      return Object.fromEntries(out.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
    }
    if (Date.now() > deadline) throw new Error(`task ${id} printed no environment: ${out}`);
    await sleep(30);
  }
}

async function partition(cores: number, name: string, extra: readonly string[] = []): Promise<string> {
  return h.detach(['--isolation', 'sm-partition', '--cores', String(cores), '--mem', '1Gi', ...extra, ...waiter(name)]);
}

type GpuBody = { uuid: string; slices: { taskId: string; smRange: { offset: number; count: number } | null }[] };

describe('sm-partition through the daemon', () => {
  it('gives two partitions disjoint SMs, frees them at exit, and keeps them over a restart', async () => {
    h = new Harness();
    await h.start();
    const a = await partition(50, 'a');
    const b = await partition(40, 'b'); // 56 SMs: with 64, a's and b's would pass SM 120
    const envA = await envOf(a);
    const envB = await envOf(b);
    expect(envA).toMatchObject({ GPUSHARE_ISOLATION: 'sm-partition', GPUSHARE_COMPUTE_LIMIT: '50', GPUSHARE_SM_OFFSET: '0' });
    expect(envB).toMatchObject({ GPUSHARE_ISOLATION: 'sm-partition', GPUSHARE_COMPUTE_LIMIT: '40', GPUSHARE_SM_OFFSET: '64' });
    // Simulated GPUs have no MPS (mps: auto): said on the task, and no pipe directory given.
    expect(envA['CUDA_MPS_PIPE_DIRECTORY']).toBeUndefined();
    expect((await h.task(a)).message).toMatch(/running without MPS \(the simulated backend has no MPS.*\): SM partitions on one GPU take turns/);
    const ta = await h.task(a);
    const uuid = ta.gpus?.[0]?.uuid ?? '';
    expect(ta.smRanges).toEqual([{ uuid, offset: 0, count: 64 }]);
    expect((await h.task(b)).smRanges).toEqual([{ uuid, offset: 64, count: 56 }]);
    const { gpus } = await h.client.json<{ gpus: GpuBody[] }>('GET', '/v1/gpus');
    expect(gpus[0]?.slices.map((s) => [s.taskId, s.smRange])).toEqual([
      [a, { offset: 0, count: 64 }],
      [b, { offset: 64, count: 56 }],
    ]);

    // The daemon goes away and comes back: the partitions keep their SMs, and are still counted.
    h.extraPids.add(ta.pid ?? -1);
    await h.stop('SIGTERM');
    await h.start();
    expect(await h.task(a)).toMatchObject({ state: 'running', adopted: true, smRanges: [{ uuid, offset: 0, count: 64 }] });
    expect(await h.task(b)).toMatchObject({ state: 'running', adopted: true, smRanges: [{ uuid, offset: 64, count: 56 }] });

    // a ends: its SMs (0-63) go to the next partition; b's are never given out.
    release('a');
    expect(await h.waitFor(a)).toMatchObject({ state: 'exited', exitCode: 0 });
    const c = await partition(25, 'c');
    expect((await envOf(c))['GPUSHARE_SM_OFFSET']).toBe('0');
    expect((await h.task(c)).smRanges).toEqual([{ uuid, offset: 0, count: 32 }]);
    release('b');
    release('c');
    await h.waitFor(b);
    await h.waitFor(c);
  });

  it('queues a partition whose SMs are free in total but not in a row, and starts it when a run frees', async () => {
    h = new Harness();
    await h.start();
    // Bigger than the 120 SMs the driver groups: refused at once, with the most that fits.
    const big = await h.run(['run', '-d', '--isolation', 'sm-partition', '--cores', '97', '--', 'true']);
    expect(big.status).not.toBe(0);
    expect(big.stderr).toMatch(/compute: 97% is 128 SMs, but the driver groups only 120 of the GPU's 132 SMs into partitions: ask for at most 93%, or 100% for the whole GPU/);
    const a = await partition(25, 'a'); // SMs 0-31
    await envOf(a);
    const b = await partition(50, 'b'); // 32-95
    await envOf(b);
    const c = await partition(15, 'c'); // 96-111
    await envOf(c);
    release('a');
    release('c');
    await h.waitFor(a);
    await h.waitFor(c);
    // 50% of compute is free, and 56 of the 120 grouped SMs (0-31, 96-119), but no 64 in a row.
    const d = await partition(50, 'd');
    const waiting = await h.waitFor(d, (t) => t.message !== null);
    expect(waiting).toMatchObject({ state: 'queued', smRanges: null });
    expect(waiting.message).toMatch(/^waiting for SMs: GPU 0: no 64 SMs in a row are free \(56 of the 120 SMs its driver can partition are free\)/);
    expect(waiting.waiting).toMatchObject({ kind: 'smPartition', text: waiting.message?.replace(/^waiting for SMs: /, '') });
    release('b');
    await h.waitFor(b);
    expect((await envOf(d))['GPUSHARE_SM_OFFSET']).toBe('0');
    release('d');
    await h.waitFor(d);
  });

  it('keeps time-sliced work off a GPU that runs partitions, and places partitions on another GPU', async () => {
    h = new Harness();
    await h.start([], {}, '2xH100-80GB');
    const a = await partition(25, 'a');
    const ta = await h.waitFor(a, (t) => t.state === 'running');
    const ts = await h.detach(['--cores', '25', '--mem', '1Gi', ...waiter('ts')]);
    const tts = await h.waitFor(ts, (t) => t.state === 'running');
    expect(tts.gpus?.[0]?.uuid).not.toBe(ta.gpus?.[0]?.uuid);
    // Both GPUs taken by one kind each: the next of either kind goes to its own kind's GPU.
    const b = await partition(25, 'b');
    expect((await h.waitFor(b, (t) => t.state === 'running')).smRanges).toEqual([{ uuid: ta.gpus?.[0]?.uuid, offset: 32, count: 32 }]);
    for (const n of ['a', 'ts', 'b']) release(n);
    for (const id of [a, ts, b]) await h.waitFor(id);
  });

  it('refuses what can never run: a fractional percent, or no GPU that can be partitioned', async () => {
    h = new Harness();
    await h.start([], {}, '1xA100-80GB');
    const odd = await h.run(['run', '-d', '--isolation', 'sm-partition', '--cores', '33.3', '--', 'true']);
    expect(odd.status).toBe(125); // run's own failure (docker's 125), not a task's code
    expect(odd.stderr).toMatch(/compute: is 33\.3%; isolation sm-partition takes a whole percentage/);
    const ampere = await h.run(['run', '-d', '--isolation', 'sm-partition', '--cores', '50', '--', 'true']);
    expect(ampere.status).not.toBe(0);
    expect(ampere.stderr).toMatch(/asks for 1 SM-partitioned GPU\(s\) but 0 here can be partitioned; isolation: sm-partition needs compute capability 9\.0 \(Hopper\) or newer; NVIDIA A100-SXM4-80GB is 8\.0 \[GS_ERR_UNSATISFIABLE\]/);
    expect(await h.client.json<TaskBody[]>('GET', '/v1/tasks?all=1')).toEqual([]);
  });
});

describe('the MPS control daemon (mps option)', () => {
  /** A fake nvidia-cuda-mps-control: `-d` "starts" (a control file in the pipe dir), stdin commands answer; every call is logged. */
  function fakeMps(): { path: string; log: string } {
    const bin = join(h.dir, 'bin');
    mkdirSync(bin, { recursive: true });
    const log = join(h.dir, 'mps.log');
    const script = join(bin, 'nvidia-cuda-mps-control');
    writeFileSync(
      script,
      `#!/bin/sh
if [ "$1" = "-d" ]; then
  echo "start pipe=$CUDA_MPS_PIPE_DIRECTORY log=$CUDA_MPS_LOG_DIRECTORY" >> "${log}"
  : > "$CUDA_MPS_PIPE_DIRECTORY/control"
  exit 0
fi
read cmd
echo "$cmd pipe=$CUDA_MPS_PIPE_DIRECTORY" >> "${log}"
case "$cmd" in
  quit) rm -f "$CUDA_MPS_PIPE_DIRECTORY/control"; exit 0 ;;
  get_server_list) [ -e "$CUDA_MPS_PIPE_DIRECTORY/control" ] && exit 0 ;;
esac
echo "Cannot find MPS control daemon process" >&2
exit 1
`,
    );
    chmodSync(script, 0o755);
    return { path: `${bin}:${process.env['PATH'] ?? '/usr/bin:/bin'}`, log };
  }
  const lines = (log: string): string[] => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);

  it('mps on: starts one control daemon with private directories, gives partitions its pipe, and quits it on shutdown', async () => {
    h = new Harness();
    const fake = fakeMps();
    await h.start(['--mps', 'on'], { PATH: fake.path });
    const pipe = join(h.stateDir, 'mps', 'pipe');
    const logDir = join(h.stateDir, 'mps', 'log');
    expect(lines(fake.log)).toEqual([`start pipe=${pipe} log=${logDir}`]);
    const a = await partition(50, 'a');
    const ts = await h.detach(['--gpus', '0', ...waiter('ts')]);
    expect(await envOf(a)).toMatchObject({ GPUSHARE_SM_OFFSET: '0', CUDA_MPS_PIPE_DIRECTORY: pipe });
    expect((await envOf(ts))['CUDA_MPS_PIPE_DIRECTORY']).toBeUndefined(); // only partitions are its clients
    expect((await h.task(a)).message).toBeNull();
    release('a');
    release('ts');
    await h.waitFor(a);
    await h.waitFor(ts);
    await h.stop('SIGTERM');
    expect(lines(fake.log)).toEqual([`start pipe=${pipe} log=${logDir}`, `quit pipe=${pipe}`]);
  });

  it('leaves the control daemon to partitions that outlive the daemon, adopts it on restart, and quits it once they are gone', async () => {
    h = new Harness();
    const fake = fakeMps();
    await h.start(['--mps', 'on'], { PATH: fake.path });
    const pipe = join(h.stateDir, 'mps', 'pipe');
    const a = await partition(50, 'a');
    h.extraPids.add((await h.waitFor(a, (t) => t.state === 'running')).pid ?? -1);
    await envOf(a);
    await h.stop('SIGTERM');
    expect(lines(fake.log).filter((l) => l.startsWith('quit'))).toEqual([]); // a still runs under it
    await h.start(['--mps', 'on'], { PATH: fake.path });
    // Found answering on its pipe: adopted, not started twice.
    expect(lines(fake.log).filter((l) => l.startsWith('start'))).toHaveLength(1);
    expect(lines(fake.log)).toContain(`get_server_list pipe=${pipe}`);
    release('a');
    await h.waitFor(a);
    await h.stop('SIGTERM');
    expect(lines(fake.log).at(-1)).toBe(`quit pipe=${pipe}`);
  });

  it.skipIf(process.getuid?.() !== 0)(`mps on with tasks as their tenants' own users: a partition is not started, saying why${process.getuid?.() === 0 ? '' : ' (skipped: needs root to switch users)'}`, async () => {
    h = new Harness();
    const fake = fakeMps();
    await h.start(['--mps', 'on', '--sandbox', 'on'], { PATH: fake.path });
    const a = await partition(50, 'a');
    const t = await h.waitFor(a);
    expect(t.state).toBe('failed');
    expect(t.message).toMatch(/MPS is required \(mps: on\) but the task runs as its tenant's own user \(sandbox.users\) and an MPS server serves one user at a time/);
    await h.stop('SIGTERM');
  });

  it('mps auto starts it only on real GPUs: on simulated ones partitions run without it, and nothing is started', async () => {
    h = new Harness();
    const fake = fakeMps();
    await h.start([], { PATH: fake.path });
    const a = await partition(50, 'a');
    expect((await envOf(a))['CUDA_MPS_PIPE_DIRECTORY']).toBeUndefined();
    release('a');
    await h.waitFor(a);
    await h.stop('SIGTERM');
    expect(lines(fake.log)).toEqual([]);
  });

  it('mps on without the binary: the daemon refuses to start, saying what is missing', async () => {
    h = new Harness();
    const err = await h.start(['--mps', 'on'], { PATH: '/nonexistent-gpushare-bin:/usr/bin:/bin' }).then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/mps: on, but nvidia-cuda-mps-control is not on PATH \(\/nonexistent-gpushare-bin:\/usr\/bin:\/bin\)/);
    expect(err?.message).toMatch(/GS_ERR_MPS_UNAVAILABLE/);
  });
});

describe('a suspended partition', () => {
  const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;

  it('gives its SMs up while suspended, and resumes only once those same SMs are free again', async () => {
    h = new Harness();
    const ckpt = join(h.dir, 'ckpt');
    mkdirSync(ckpt, { recursive: true });
    await h.start(['--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt });
    const { gpus } = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    const uuid = gpus[0]?.uuid ?? '';
    const fake = JSON.stringify({ contextBytes: 4 * 2 ** 20, devices: [{ uuid, name: 'NVIDIA H100 80GB HBM3' }] });
    const a = await h.detach(['--isolation', 'sm-partition', '--cores', '50', '--mem', '8Gi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', TRAIN, '150', '20', '4', '5']);
    const ta = await h.waitFor(a, (t) => t.state === 'running');
    for (const deadline = Date.now() + 15_000; !(existsSync(ta.stdoutPath) && readFileSync(ta.stdoutPath, 'utf8').includes('ready')); ) {
      if (Date.now() > deadline) throw new Error(`fake-train never got ready: ${existsSync(ta.stderrPath) ? readFileSync(ta.stderrPath, 'utf8') : ''}`);
      await sleep(30);
    }
    expect(ta.smRanges).toEqual([{ uuid, offset: 0, count: 64 }]);

    const s = await h.run(['suspend', a]);
    expect(s.stderr).toBe('');
    expect(await h.task(a)).toMatchObject({ state: 'suspended', smRanges: [{ uuid, offset: 0, count: 64 }] });
    // Its SMs are free for others meanwhile: first fit puts the next partition on SM 0.
    const c = await partition(25, 'c');
    expect((await envOf(c))['GPUSHARE_SM_OFFSET']).toBe('0');
    // Its process's green context is made of SMs 0-63: it cannot come back elsewhere, so it waits.
    const r = await h.run(['resume', a]);
    expect(r.status).toBe(0);
    expect((await h.task(a)).state).toBe('suspended');
    release('c');
    await h.waitFor(c);
    const back = await h.waitFor(a, (t) => t.state === 'running' || t.state === 'exited', 30_000);
    expect(back.smRanges).toEqual([{ uuid, offset: 0, count: 64 }]);
    const done = await h.waitFor(a, undefined, 30_000);
    expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
    expect(readFileSync(done.stdoutPath, 'utf8')).toMatch(/^result ok/m);
  }, 60_000);
});
