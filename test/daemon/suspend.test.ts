/**
 * Suspend, resume and preemption end to end: the real daemon on the simulated backend, tasks
 * running fake-train on the fake CUDA driver with the real libgpushare preloaded, and the
 * daemon checkpointing them through koffi on the fake libcuda (cross-process, see
 * native/testing/fake_cuda_checkpoint.h). What the fake's checkpoint file says about a task's
 * process (state, device bytes, bytes held on the host) is read here to prove what happened.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ErrorBody, TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, procState, sleep, stateBecomes, waitForOutput } from './harness.js';

const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const MiB = 2 ** 20;

interface Event {
  seq: number;
  type: string;
  taskId: string | null;
  data: Record<string, unknown>;
}

/**
 * A daemon whose tasks and checkpoint calls use the fake driver. These tests are about the CUDA
 * checkpoint API path, so slice swap (on by default, which would suspend these tasks by swap
 * first) is turned off here: --no-swap. test/daemon/swap.test.ts covers the swap path and its
 * fallback to the checkpoint API.
 */
async function startDaemon(h: Harness, simulate: string, extra: readonly string[] = []): Promise<{ ckpt: string; uuids: string[] }> {
  const ckpt = join(h.dir, 'ckpt');
  mkdirSync(ckpt, { recursive: true });
  // The tasks' fake driver meets the daemon's through the checkpoint directory: they need it too.
  await h.start(['--no-swap', ...extra, '--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt }, simulate);
  const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
  return { ckpt, uuids: gpus.gpus.map((g) => g.uuid) };
}

/** fake-train's fake driver: the machine's GPUs, same chip, so a restore may move between them. */
function fakeCuda(uuids: readonly string[]): string {
  return JSON.stringify({ contextBytes: 4 * MiB, devices: uuids.map((uuid) => ({ uuid, name: 'NVIDIA H100 80GB HBM3' })) });
}

/** What the fake driver publishes about one process (fake_cuda_ckpt_file_t). */
function ckptFile(dir: string, pid: number): { state: number; used: number; onHost: number; uuid: string } | null {
  const path = join(dir, `${pid}.ckpt`);
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  const dev = 48 + 16 * 2 * 16; // header, then the pairs table
  return { state: b.readUInt32LE(16), used: Number(b.readBigUInt64LE(dev + 48)), onHost: Number(b.readBigUInt64LE(dev + 56)), uuid: b.toString('latin1', dev, dev + 48).replace(/\0.*$/s, '') };
}

/** Pids of live CUDA processes (fake-train under gpushare-exec): those that published a checkpoint file. */
function trainPid(dir: string): number[] {
  return readdirSync(dir)
    .map((f) => Number(f.replace('.ckpt', '')))
    .filter((p) => procState(p) !== null && procState(p) !== 'Z');
}


async function post(h: Harness, path: string): Promise<{ status: number; body: ErrorBody & TaskBody }> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ socketPath: h.socket, path, method: 'POST' }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as ErrorBody & TaskBody }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function events(h: Harness, id?: string): Promise<Event[]> {
  const all = await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000');
  return id === undefined ? all : all.filter((e) => e.taskId === id);
}

async function submitTrain(h: Harness, uuids: readonly string[], args: { mem: string; priority: string; steps: number; stepMs: number; mib: number; seed: number }): Promise<TaskBody> {
  const id = await h.detach(['--mem', args.mem, '--priority', args.priority, '-e', `GPUSHARE_FAKE_CUDA=${fakeCuda(uuids)}`, '--', TRAIN, String(args.steps), String(args.stepMs), String(args.mib), String(args.seed)]);
  return h.task(id);
}

describe('suspend and resume (one GPU)', () => {
  const h = new Harness();
  let ckpt = '';
  let uuids: string[] = [];
  beforeAll(async () => {
    expect(existsSync(TRAIN), `${TRAIN} is built by npm run build`).toBe(true);
    ({ ckpt, uuids } = await startDaemon(h, '1xH100-80GB'));
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('suspends through the CLI (GPU memory to host, processes stopped, GPU free) and resumes to a correct finish', async () => {
    const task = await submitTrain(h, uuids, { mem: '8Gi', priority: 'normal', steps: 60, stepMs: 40, mib: 16, seed: 11 });
    await waitForOutput(task, 'ready');
    const [pid] = trainPid(ckpt);
    expect(pid).toBeDefined();
    const before = ckptFile(ckpt, pid ?? -1);
    expect(before?.used).toBeGreaterThanOrEqual(16 * MiB);

    const s = await h.run(['suspend', task.id.slice(0, 6)]);
    expect(s.stderr).toBe('');
    // Not a terminal: no progress, one final line with the daemon's time and the bytes moved.
    expect(s.stdout).toMatch(new RegExp(`^${task.id} suspended in \\d+\\.\\d s, [\\d.]+ MiB of GPU memory moved to host memory\n$`));
    const suspended = await h.task(task.id);
    expect(suspended.state).toBe('suspended');
    expect(suspended.suspensions).toBe(1);
    expect(suspended.gpus?.[0]?.uuid).toBe(uuids[0]); // the reservation record stays
    const during = ckptFile(ckpt, pid ?? -1);
    expect(during).toMatchObject({ state: 2, used: 0 });
    expect(during?.onHost).toBe(before?.used);
    expect(await stateBecomes(pid ?? -1, 'T')).toBe('T'); // stopped: no CPU work either
    const gpus = await h.client.json<{ gpus: { allocatedMemoryBytes: number; slices: unknown[] }[] }>('GET', '/v1/gpus');
    expect(gpus.gpus[0]?.allocatedMemoryBytes).toBe(0);
    const steps = readFileSync(task.stdoutPath, 'utf8');
    await sleep(400);
    expect(readFileSync(task.stdoutPath, 'utf8')).toBe(steps);

    const r = await h.run(['resume', '--json', task.id]);
    expect(r.stderr).toBe('');
    const [resumed] = JSON.parse(r.stdout) as { id: string; state: string; ms: number; gpuBytes: number; moved: boolean }[];
    expect(resumed).toMatchObject({ id: task.id, state: 'running', moved: false });
    expect(resumed?.ms).toBeGreaterThanOrEqual(0);
    expect(resumed?.gpuBytes).toBeGreaterThanOrEqual(16 * MiB);
    expect(ckptFile(ckpt, pid ?? -1)).toMatchObject({ state: 0, used: before?.used, onHost: 0 });
    const done = await h.waitFor(task.id, undefined, 30_000);
    expect(done.state).toBe('exited');
    expect(done.exitCode).toBe(0);
    const out = readFileSync(task.stdoutPath, 'utf8');
    expect(out).toMatch(/^step 60$/m);
    expect(out).toMatch(/^result ok sum=[0-9a-f]+$/m);
    const types = (await events(h, task.id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['task.suspending', 'task.suspended', 'task.resuming', 'task.resumed']));
    const ev = (await events(h, task.id)).find((e) => e.type === 'task.suspended');
    expect(typeof ev?.data['ms']).toBe('number');
  }, 60_000);

  it('keeps a foreground run attached across suspend and resume; it exits with the task code', async () => {
    const run = h.cli(['run', '--mem', '4Gi', '-e', `GPUSHARE_FAKE_CUDA=${fakeCuda(uuids)}`, '--', TRAIN, '30', '20', '4', '8']);
    let out = '';
    run.child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    const deadline = Date.now() + 15_000;
    while (!out.includes('ready') && Date.now() < deadline) await sleep(20);
    const live = (await h.client.json<TaskBody[]>('GET', '/v1/tasks')).find((t) => t.command[0] === TRAIN && t.state === 'running');
    expect(live).toBeDefined();
    expect((await post(h, `/v1/tasks/${live?.id}/suspend`)).body.state).toBe('suspended');
    await sleep(300);
    expect(run.child.exitCode).toBeNull(); // still attached
    expect((await post(h, `/v1/tasks/${live?.id}/resume`)).body.state).toBe('running');
    const r = await run.done;
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^step 30$/m);
    expect(r.stdout).toMatch(/^result ok sum=/m);
  }, 60_000);

  it('refuses suspend and resume in the wrong state with a precise 4xx, changing nothing', async () => {
    const task = await submitTrain(h, uuids, { mem: '8Gi', priority: 'normal', steps: 100, stepMs: 30, mib: 4, seed: 2 });
    await waitForOutput(task, 'ready');
    const eventsBefore = (await events(h, task.id)).length;
    const resumeRunning = await post(h, `/v1/tasks/${task.id}/resume`);
    expect(resumeRunning.status).toBe(409);
    expect(resumeRunning.body.error).toEqual({ code: 'GS_ERR_CONFLICT', message: `task ${task.id} is running; only a suspended task can be resumed` });
    expect((await post(h, `/v1/tasks/${task.id}/suspend`)).status).toBe(200);
    const again = await post(h, `/v1/tasks/${task.id}/suspend`);
    expect(again.status).toBe(409);
    expect(again.body.error.message).toBe(`task ${task.id} is already suspended; only a running task can be suspended`);
    const unknown = await post(h, '/v1/tasks/ffffffffffff/suspend');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('GS_ERR_NOT_FOUND');
    const now = await h.task(task.id);
    expect(now.state).toBe('suspended');
    expect(now.suspensions).toBe(1);
    // The audit and state events of the one suspension, nothing for the refusals.
    expect((await events(h, task.id)).length).toBe(eventsBefore + 2);

    // A suspended task can be killed: it is continued so the signal lands.
    const killed = await h.run(['kill', task.id]);
    expect(killed.status).toBe(0);
    const end = await h.waitFor(task.id);
    expect(end.state).toBe('killed');
    const late = await post(h, `/v1/tasks/${task.id}/resume`);
    expect(late.status).toBe(409);
    expect(late.body.error.message).toBe(`task ${task.id} is already ended (killed); only a suspended task can be resumed`);
    const cli = await h.run(['suspend', task.id]);
    expect(cli.status).not.toBe(0);
    expect(cli.stderr).toMatch(/already ended \(killed\); only a running task can be suspended \[GS_ERR_CONFLICT\]/);
  }, 60_000);

  // script(1) is util-linux, present wherever the rest of these tests run; skipped (visibly) if not.
  it.skipIf(spawnSync('script', ['--version']).status !== 0)('shows progress on a terminal while a slow suspend and resume run: spinner, elapsed time, the daemon\'s events, then the final line', async () => {
    const cuda = JSON.stringify({ ...JSON.parse(fakeCuda(uuids)), checkpointStepMillis: { checkpoint: 1500, restore: 1500 } });
    const id = await h.detach(['--mem', '4Gi', '-e', `GPUSHARE_FAKE_CUDA=${cuda}`, '--', TRAIN, '200', '20', '4', '5']);
    await waitForOutput(await h.task(id), 'ready');
    const onTty = (args: string): string => {
      const r = spawnSync('script', ['-qfec', `${process.execPath} ${REPO_ROOT}bin/gpushare.js ${args}`, '/dev/null'], { env: { ...process.env, GPUSHARE_HOST: h.socket, TERM: 'xterm', COLUMNS: '200' }, encoding: 'utf8', timeout: 30_000 });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      return r.stdout;
    };
    const s = onTty(`suspend ${id}`);
    expect(s).toMatch(new RegExp(`[|/\\\\-] suspending ${id}(?: - [\\d.]+ MiB of GPU memory to host memory)? - [1-9]\\.\\d s`)); // redrawn past 1 s
    expect(s).toContain('  suspending (asked by'); // the daemon's events, each on its own line
    expect(s).toMatch(/ {2}suspended in \d+\.\d s: [\d.]+ MiB moved, 1 CUDA process\(es\) stopped/);
    expect(s).toMatch(new RegExp(`(?:^|\\x1b\\[2K)${id} suspended in \\d+\\.\\d s, [\\d.]+ MiB of GPU memory moved to host memory\\r?$`, 'm'));
    const r = onTty(`resume ${id}`);
    expect(r).toMatch(new RegExp(`resuming ${id}(?: - [\\d.]+ MiB of GPU memory back to the GPU)? - [1-9]\\.\\d s`));
    expect(r).toMatch(new RegExp(`(?:^|\\x1b\\[2K)${id} running, resumed in \\d+\\.\\d s, [\\d.]+ MiB of GPU memory restored\\r?$`, 'm'));
    expect((await h.task(id)).state).toBe('running');
    await h.run(['kill', id]);
    await h.waitFor(id);
  }, 60_000);

  it('reports a checkpoint the driver fails as 503 GS_ERR_CHECKPOINT_FAILED, and the task runs on', async () => {
    const cuda = JSON.stringify({ ...JSON.parse(fakeCuda(uuids)), errors: { cuCheckpointProcessCheckpoint: 2 } });
    const id = await h.detach(['--mem', '4Gi', '-e', `GPUSHARE_FAKE_CUDA=${cuda}`, '--', TRAIN, '20', '20', '4', '1']);
    await waitForOutput(await h.task(id), 'ready');
    const r = await post(h, `/v1/tasks/${id}/suspend`);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('GS_ERR_CHECKPOINT_FAILED');
    expect(r.body.error.message).toMatch(new RegExp(`^task ${id} could not be suspended and goes on running: cuCheckpointProcessCheckpoint\\(\\d+\\) failed: CUDA_ERROR_OUT_OF_MEMORY`));
    const t = await h.task(id);
    expect(t.state).toBe('running');
    expect(t.suspensions).toBe(0);
    expect((await events(h, id)).map((e) => e.type)).toContain('task.suspend-failed');
    const done = await h.waitFor(id, undefined, 30_000);
    expect(done.exitCode).toBe(0);
    expect(readFileSync(done.stdoutPath, 'utf8')).toMatch(/^result ok/m);
  }, 60_000);

  it('preempts a low-priority task by suspending it, runs the high one, then resumes the low one to a correct finish', async () => {
    const low = await submitTrain(h, uuids, { mem: '60Gi', priority: 'low', steps: 40, stepMs: 40, mib: 16, seed: 7 });
    await waitForOutput(low, 'ready');
    const highId = await h.detach(['--mem', '40Gi', '--priority', 'high', '-e', `GPUSHARE_FAKE_CUDA=${fakeCuda(uuids)}`, '--', TRAIN, '5', '20', '8', '9']);
    const high = await h.waitFor(highId, undefined, 30_000);
    expect(high.state).toBe('exited');
    expect(high.exitCode).toBe(0);
    expect(readFileSync(high.stdoutPath, 'utf8')).toMatch(/^result ok/m);
    const lowDone = await h.waitFor(low.id, undefined, 30_000);
    expect(lowDone.state).toBe('exited');
    expect(lowDone.exitCode).toBe(0);
    expect(lowDone.suspensions).toBe(1);
    expect(lowDone.preemptedBy).toBeNull();
    const out = readFileSync(low.stdoutPath, 'utf8');
    expect(out).toMatch(/^step 40$/m);
    expect(out).toMatch(/^result ok sum=/m);
    // The order: the low one was suspended before the high one started, resumed after it ended.
    const all = await events(h);
    const at = (type: string, id: string): number => all.find((e) => e.type === type && e.taskId === id)?.seq ?? -1;
    const preempting = all.find((e) => e.type === 'task.preempting' && e.taskId === highId);
    expect(preempting?.data['victims']).toEqual([{ id: low.id, action: 'suspend' }]);
    expect(at('task.suspended', low.id)).toBeGreaterThan(0);
    expect(at('task.started', highId)).toBeGreaterThan(at('task.suspended', low.id));
    expect(at('task.resuming', low.id)).toBeGreaterThan(at('task.ended', highId));
    expect(all.find((e) => e.type === 'task.suspending' && e.taskId === low.id)?.data['preemptedBy']).toBe(highId);
  }, 60_000);
});

describe('resume on another GPU of the same model (two simulated GPUs)', () => {
  const h = new Harness();
  let uuids: string[] = [];
  beforeAll(async () => {
    ({ uuids } = await startDaemon(h, '2xH100-80GB'));
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('restores onto the free GPU through GPU remapping when its own is taken; CUDA_VISIBLE_DEVICES stays', async () => {
    const task = await submitTrain(h, uuids, { mem: '60Gi', priority: 'normal', steps: 30, stepMs: 30, mib: 16, seed: 5 });
    await waitForOutput(task, 'ready');
    const own = task.gpus?.[0]?.uuid ?? (await h.task(task.id)).gpus?.[0]?.uuid;
    const other = uuids.find((u) => u !== own) ?? '';
    expect((await post(h, `/v1/tasks/${task.id}/suspend`)).status).toBe(200);
    // Something else takes its GPU while it is suspended.
    const blocker = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sleep', '30'], memory: '60Gi', uuids: { include: [own] } });
    await h.waitFor(blocker.id, (t) => t.state === 'running');
    const resumed = await post(h, `/v1/tasks/${task.id}/resume`);
    expect(resumed.status).toBe(200);
    expect(resumed.body.state).toBe('running');
    expect(resumed.body.gpus?.[0]?.uuid).toBe(other);
    const done = await h.waitFor(task.id, undefined, 30_000);
    expect(done.state).toBe('exited');
    const out = readFileSync(task.stdoutPath, 'utf8');
    expect(out).toMatch(new RegExp(`^start device ${own}$`, 'mi'));
    expect(out).toMatch(new RegExp(`^end device ${other}$`, 'mi'));
    expect(out).toMatch(/^result ok/m);
    const ev = (await events(h, task.id)).find((e) => e.type === 'task.resumed');
    expect(ev?.data['moved']).toBe(true);
    await h.run(['kill', blocker.id]);
  }, 60_000);
});

describe('a suspended task across a daemon restart', () => {
  const h = new Harness();
  let ckpt = '';
  let uuids: string[] = [];
  beforeAll(async () => {
    ({ ckpt, uuids } = await startDaemon(h, '1xH100-80GB'));
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('stays suspended while the daemon is down and after it restarts, then resumes and finishes', async () => {
    const task = await submitTrain(h, uuids, { mem: '8Gi', priority: 'normal', steps: 20, stepMs: 30, mib: 8, seed: 3 });
    await waitForOutput(task, 'ready');
    expect((await post(h, `/v1/tasks/${task.id}/suspend`)).status).toBe(200);
    const [pid] = trainPid(ckpt);
    h.extraPids.add(task.pid ?? -1);
    await h.stop('SIGKILL');
    expect(await stateBecomes(pid ?? -1, 'T')).toBe('T');
    expect(ckptFile(ckpt, pid ?? -1)).toMatchObject({ state: 2, used: 0 });
    await startDaemon(h, '1xH100-80GB');
    const after = await h.task(task.id);
    expect(after.state).toBe('suspended');
    expect(after.adopted).toBe(true);
    expect(await stateBecomes(pid ?? -1, 'T')).toBe('T');
    expect((await post(h, `/v1/tasks/${task.id}/resume`)).body.state).toBe('running');
    const done = await h.waitFor(task.id, undefined, 30_000);
    expect(done.state).toBe('exited');
    expect(done.exitCode).toBe(0);
    expect(readFileSync(task.stdoutPath, 'utf8')).toMatch(/^result ok/m);
  }, 60_000);
});

describe('without a driver that can checkpoint', () => {
  const h = new Harness();
  const k = new Harness();
  const noDriver = { GPUSHARE_CUDA_PATH: '/nonexistent/libcuda.so.1' };
  // Neither the checkpoint API nor slice swap (on by default: turned off here, --no-swap): no way
  // to suspend at all. A daemon with swap on but no checkpoint API is the next describe's.
  beforeAll(async () => {
    await Promise.all([h.start(['--no-swap'], noDriver), k.start(['--no-swap', '--preemption', 'suspend-then-kill'], noDriver)]);
  });
  afterAll(async () => {
    await Promise.all([h.cleanup(), k.cleanup()]);
  });

  it('says so at start and refuses suspend with 503, the task running on; preemption never kills by default', async () => {
    expect(h.log).toMatch(/cannot load the CUDA driver from \/nonexistent\/libcuda\.so\.1.*suspend, resume and preemption by suspension are unavailable/);
    const low = await h.detach(['--mem', '60Gi', '--priority', 'low', '--', 'sleep', '30']);
    await h.waitFor(low, (t) => t.state === 'running');
    const r = await post(h, `/v1/tasks/${low}/suspend`);
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('GS_ERR_CHECKPOINT_UNAVAILABLE');
    expect(r.body.error.message).toMatch(/^cannot suspend: cannot load the CUDA driver/);
    expect((await h.task(low)).state).toBe('running');
    const high = await h.detach(['--mem', '40Gi', '--priority', 'high', '--', 'true']);
    await sleep(500);
    expect((await h.task(high)).state).toBe('queued');
    expect((await h.task(low)).state).toBe('running');
    expect((await events(h)).some((e) => e.type === 'task.preempting')).toBe(false);
  });

  it('kills the victim as the last resort when the policy is suspend-then-kill', async () => {
    const low = await k.detach(['--mem', '60Gi', '--priority', 'low', '--', 'sleep', '30']);
    await k.waitFor(low, (t) => t.state === 'running');
    const high = await k.detach(['--mem', '40Gi', '--priority', 'high', '--', 'true']);
    const done = await k.waitFor(high, undefined, 20_000);
    expect(done.state).toBe('exited');
    const victim = await k.waitFor(low);
    expect(victim.state).toBe('killed');
    expect(victim.message).toBe(`preempted by task ${high}: killed because it cannot be suspended`);
    const ev = (await events(k)).find((e) => e.type === 'task.preempting');
    expect(ev?.data['victims']).toEqual([{ id: low, action: 'evict' }]);
  });
});

describe('slice swap on (--swap) without a driver that can checkpoint', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.start(['--swap'], { GPUSHARE_CUDA_PATH: '/nonexistent/libcuda.so.1' });
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('tries a suspension once for a victim neither path can suspend, says why, and does not ask again at once', async () => {
    const low = await h.detach(['--mem', '60Gi', '--priority', 'low', '--', 'sleep', '30']);
    await h.waitFor(low, (t) => t.state === 'running');
    const r = await post(h, `/v1/tasks/${low}/suspend`);
    expect(r.status).toBe(503);
    expect(r.body.error.message).toMatch(/slice swap: the task has no CUDA process; cannot load the CUDA driver/);
    expect((await h.task(low)).state).toBe('running');
    const high = await h.detach(['--mem', '40Gi', '--priority', 'high', '--', 'true']);
    await sleep(2500);
    // Before the queue remembered the failure, the preemption was asked again on every pass:
    // hundreds of task.suspend-failed events a second.
    const failed = (await events(h)).filter((e) => e.taskId === low && e.type === 'task.suspend-failed');
    expect(failed.length).toBeGreaterThanOrEqual(2); // the explicit one, then the preemption's
    expect(failed.length).toBeLessThanOrEqual(3);
    expect((await h.task(low)).state).toBe('running');
    expect((await h.task(high)).state).toBe('queued');
  }, 60_000);
});

describe('a daemon killed in the middle of a suspension', () => {
  const h = new Harness();
  let ckpt = '';
  let uuids: string[] = [];
  beforeAll(async () => {
    ({ ckpt, uuids } = await startDaemon(h, '1xH100-80GB'));
  });
  afterAll(async () => {
    await h.cleanup();
  });

  // The fake's step is made slow (as a real checkpoint moving many GiB takes seconds), so the
  // daemon is SIGKILLed while the driver is inside the step it asked for. The slow lock
  // outlasts the restart: the new daemon finds the process still running, with the dead
  // daemon's lock about to land, and must not take it for a running task.
  it.each([
    ['lock', 0, 5000],
    ['checkpoint', 1, 1500],
  ])('finishes the suspension on restart when killed during the %s step; the task resumes and ends correctly', async (step, driverState, ms) => {
    const cuda = JSON.stringify({ contextBytes: 4 * MiB, checkpointStepMillis: { [step]: ms }, devices: uuids.map((uuid) => ({ uuid, name: 'NVIDIA H100 80GB HBM3' })) });
    const id = await h.detach(['--mem', '8Gi', '-e', `GPUSHARE_FAKE_CUDA=${cuda}`, '--', TRAIN, '150', '40', '8', '21']);
    const task = await h.task(id);
    await waitForOutput(task, 'ready');
    const pid = trainPid(ckpt).find((p) => ckptFile(ckpt, p)?.state === 0);
    expect(pid).toBeDefined();
    h.extraPids.add(task.pid ?? -1);
    const pending = post(h, `/v1/tasks/${id}/suspend`).catch(() => null);
    await h.waitFor(id, (t) => t.state === 'suspending', 10_000);
    if (driverState === 1) {
      const deadline = Date.now() + 10_000;
      while (ckptFile(ckpt, pid ?? -1)?.state !== 1 && Date.now() < deadline) await sleep(10);
    } else {
      await sleep(200); // the lock was asked for and takes a second; it has not happened yet
    }
    expect(ckptFile(ckpt, pid ?? -1)?.state).toBe(driverState);
    await h.stop('SIGKILL');
    expect(await pending).toBeNull();
    // The driver finishes the step the dead daemon asked for: the task is not left running free.
    await startDaemon(h, '1xH100-80GB');
    const done = await h.waitFor(id, undefined, 60_000);
    expect(done.state).toBe('exited');
    expect(done.exitCode).toBe(0);
    expect(readFileSync(task.stdoutPath, 'utf8')).toMatch(/^result ok/m);
    const types = (await events(h, id)).map((e) => `${e.type}${e.type === 'task.reconciled' ? `:${String(e.data['state'])}` : ''}`);
    const at = types.indexOf('task.reconciled:suspended');
    expect(at, types.join(' ')).toBeGreaterThan(types.indexOf('task.adopted'));
    expect(types.slice(at)).toEqual(expect.arrayContaining(['task.resuming', 'task.resumed']));
    expect(types).not.toContain('task.suspend-failed');
    expect(ckptFile(ckpt, pid ?? -1)).toBeNull(); // ended: the fake's agent file is gone with it
  }, 90_000);
});
