/**
 * Moving a task to another GPU of the same model (issue 22 item 5): the real daemon with --swap
 * on the simulated backend (two H100s and an A100), fake-train on the fake CUDA driver under the
 * real libgpushare. `gpushare move` swaps the task's memory out, checkpoints the rest, restores
 * it onto the other GPU (the driver's GPU pairs) and swaps the memory in there: the program
 * goes on, on the new GPU, with every byte at the same address. Refusals (another model, the
 * same GPU, no such GPU, no room) change nothing.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, procState, waitForOutput } from './harness.js';

const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const MiB = 2 ** 20;


/** The fake's per-process file: the physical GPU behind the process's device 0 now, and what it holds there. */
function device0(ckpt: string, pid: number): { uuid: string; used: number } | null {
  const path = join(ckpt, `${pid}.ckpt`);
  if (!existsSync(path)) return null;
  const b = readFileSync(path);
  const at = 48 + 16 * 2 * 16;
  return { uuid: b.toString('utf8', at, at + 48).replace(/\0.*$/s, ''), used: Number(b.readBigUInt64LE(at + 48)) };
}

/** The task's fake-train: the live process with a fake-driver file in its process group. */
function trainPid(ckpt: string, pgid: number | null): number | undefined {
  return livePids(ckpt).find((p) => {
    const stat = existsSync(`/proc/${p}/stat`) ? readFileSync(`/proc/${p}/stat`, 'utf8') : '';
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) === pgid;
  });
}

function livePids(ckpt: string): number[] {
  return readdirSync(ckpt)
    .map((f) => Number(f.replace('.ckpt', '')))
    .filter((p) => procState(p) !== null && procState(p) !== 'Z');
}

interface Event {
  readonly type: string;
  readonly taskId: string | null;
  readonly data: Record<string, unknown>;
}

describe('gpushare move (--swap, two GPUs of one model)', () => {
  const h = new Harness();
  let ckpt = '';
  let fake = '';
  let uuids: string[] = [];
  beforeAll(async () => {
    expect(existsSync(TRAIN), `${TRAIN} is built by npm run build`).toBe(true);
    ckpt = join(h.dir, 'ckpt');
    mkdirSync(ckpt, { recursive: true });
    await h.start(['--swap', '--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt }, '2xH100-80GB,1xA100-40GB');
    const gpus = await h.client.json<{ gpus: { uuid: string; name: string }[] }>('GET', '/v1/gpus');
    uuids = gpus.gpus.map((g) => g.uuid);
    fake = JSON.stringify({ contextBytes: 4 * MiB, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: g.name })) });
  });
  afterAll(async () => {
    await h.cleanup();
  });

  async function training(steps = 80): Promise<{ id: string; task: TaskBody; pid: number }> {
    const id = await h.detach(['--mem', '8Gi', '--gpu-model', 'H100-80GB', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', TRAIN, String(steps), '40', '16', '7']);
    const task = await h.task(id);
    await waitForOutput(task, 'ready');
    const pid = trainPid(ckpt, (await h.task(id)).pid);
    if (pid === undefined) throw new Error('no fake-train process');
    return { id, task, pid };
  }

  it('moves a running task to the other H100: memory by swap, contexts by the driver; it finishes there with every byte', async () => {
    const { id, task, pid } = await training();
    const from = (await h.task(id)).gpus?.[0]?.uuid ?? '';
    const to = uuids.find((u, i) => i < 2 && u !== from) ?? '';
    const target = uuids.indexOf(to);
    expect(device0(ckpt, pid)?.uuid).toBe(from);
    const before = device0(ckpt, pid)?.used ?? 0;

    const r = await h.run(['move', '--json', id, '--gpu', String(target)]);
    expect(r.stderr).toBe('');
    const [out] = JSON.parse(r.stdout) as { state: string; gpus: string[]; moved: boolean; path: string; move: { checkpointSeconds: number; restoreSeconds: number; swapInSeconds: number } | null }[];
    expect(out).toMatchObject({ state: 'running', gpus: [to], moved: true, path: 'swap' });
    expect(out?.move?.swapInSeconds).toBeGreaterThanOrEqual(0);
    expect(out?.move?.checkpointSeconds).toBeGreaterThanOrEqual(0);
    const after = await h.task(id);
    expect(after.gpus?.map((g) => g.uuid)).toEqual([to]);
    // The process's device 0 is the other GPU now, holding what it held before.
    expect(device0(ckpt, pid)).toEqual({ uuid: to, used: before });

    const done = await h.waitFor(id, undefined, 30_000);
    expect(done.exitCode).toBe(0);
    const stdout = readFileSync(task.stdoutPath, 'utf8');
    expect(stdout).toContain(`start device ${from}`);
    expect(stdout).toContain(`end device ${to}`);
    expect(stdout).toMatch(/^result ok sum=[0-9a-f]+$/m);
    const events = (await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000')).filter((e) => e.taskId === id);
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['task.suspending', 'task.suspended', 'task.resuming', 'task.resumed']));
    const resumed = events.find((e) => e.type === 'task.resumed');
    expect(resumed?.data).toMatchObject({ moved: true, path: 'swap', swappedBytes: 16 * MiB, gpus: [to], move: { devices: [to] } });
    const audit = await h.client.json<{ action: string; target: string; detail: Record<string, unknown> }[]>('GET', '/v1/audit?since=0&limit=10000').catch(() => null);
    if (audit !== null) expect(audit.some((a) => a.action === 'task.move' && a.target === id)).toBe(true);
  }, 60_000);

  it('moves a suspended task and it runs on the new GPU', async () => {
    const { id, task, pid } = await training();
    const from = (await h.task(id)).gpus?.[0]?.uuid ?? '';
    const to = uuids.find((u, i) => i < 2 && u !== from) ?? '';
    const s = await h.run(['suspend', id]);
    expect(s.stderr).toBe('');
    const r = await h.run(['move', id, '--gpu', String(uuids.indexOf(to))]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^${id} moved to ${to} in \\d+\\.\\d\\d s, .* by slice swap .*\\(checkpoint [\\d.]+ s, restore [\\d.]+ s, swap-in [\\d.]+ s\\)\n$`));
    expect(device0(ckpt, pid)?.uuid).toBe(to);
    const done = await h.waitFor(id, undefined, 30_000);
    expect(done.exitCode).toBe(0);
    expect(readFileSync(task.stdoutPath, 'utf8')).toMatch(/^result ok sum=[0-9a-f]+$/m);
  }, 60_000);

  it('refuses another model, the same GPU, a GPU that is not there and a GPU without room, changing nothing', async () => {
    const { id, pid } = await training(200);
    const from = (await h.task(id)).gpus?.[0]?.uuid ?? '';
    const other = uuids.find((u, i) => i < 2 && u !== from) ?? '';
    const eventsBefore = (await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000')).filter((e) => e.taskId === id).length;
    const cases: [string, RegExp][] = [
      ['2', /GPU 2 is a A100-40GB, .* a H100-80GB: a slice moves only to a GPU of the same model/],
      [String(uuids.indexOf(from)), /is on GPU \d already/],
      ['9', /this machine has no GPU 9/],
    ];
    for (const [gpu, message] of cases) {
      const r = await h.run(['move', id, '--gpu', gpu]);
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(message);
    }
    // No room: a task that takes most of the other H100.
    const big = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sleep', '60'], gpus: 1, memory: '75Gi', uuids: { include: [other] } });
    await h.waitFor(big.id, (t) => t.state === 'running');
    const r = await h.run(['move', id, '--gpu', String(uuids.indexOf(other))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/no room for the slice on GPU \d/);
    const after = await h.task(id);
    expect(after.state).toBe('running');
    expect(after.gpus?.map((g) => g.uuid)).toEqual([from]);
    expect(device0(ckpt, pid)?.uuid).toBe(from);
    expect(procState(pid)).not.toBe('T');
    expect((await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000')).filter((e) => e.taskId === id).length).toBe(eventsBefore);
    await h.run(['kill', id, big.id]);
  }, 60_000);
});

describe('a daemon killed at each step of a move', () => {
  /** A daemon with --swap on two H100s, armed with `fault` if given; the same state and fake-driver directory each time. */
  async function startMoving(h: Harness, fault?: string): Promise<{ ckpt: string; uuids: string[]; fake: string }> {
    const ckpt = join(h.dir, 'ckpt');
    mkdirSync(ckpt, { recursive: true });
    await h.start(['--swap', '--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt, ...(fault === undefined ? {} : { GPUSHARE_FAULT: fault }) }, '2xH100-80GB');
    const gpus = await h.client.json<{ gpus: { uuid: string; name: string }[] }>('GET', '/v1/gpus');
    return { ckpt, uuids: gpus.gpus.map((g) => g.uuid), fake: JSON.stringify({ contextBytes: 4 * MiB, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: g.name })) }) };
  }

  // Each point cut short: the next daemon finds the task where it really is (its old GPU before
  // the restore, the new one after), records it there, and the program ends with every byte.
  it.each([
    ['suspend.after-checkpoint', 'old'],
    ['resume.after-intent', 'old'],
    ['move.after-checkpoint', 'old'],
    ['move.after-restore', 'new'],
    ['resume.after-restore', 'new'],
  ] as const)('%s: the task goes on, recorded on the GPU it is on (%s), to a correct end', async (point, where) => {
    const h = new Harness();
    try {
      const { ckpt, uuids, fake } = await startMoving(h, point);
      const created = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: [TRAIN, '150', '40', '16', '9'], env: { GPUSHARE_FAKE_CUDA: fake }, memory: '8Gi' });
      const task = await h.waitFor(created.id, (t) => t.state === 'running');
      h.extraPids.add(task.pid ?? -1);
      await waitForOutput(task, 'ready');
      const from = task.gpus?.[0]?.uuid ?? '';
      const to = uuids.find((u) => u !== from) ?? '';
      const pid = trainPid(ckpt, task.pid);
      await expect(h.client.json('POST', `/v1/tasks/${task.id}/move`, { gpus: [uuids.indexOf(to)] })).rejects.toThrow();
      expect(await h.died()).toBe('SIGKILL');
      await startMoving(h);
      const settled = await h.waitFor(task.id, (t) => t.state === 'running' || t.state === 'suspended' || t.state === 'exited', 30_000);
      // A suspension cut short is finished by the new daemon, which resumes it where it was.
      const running = settled.state === 'suspended' ? await h.waitFor(task.id, (t) => t.state !== 'suspended' && t.state !== 'resuming', 30_000) : settled;
      const expected = where === 'old' ? from : to;
      if (running.state === 'running') {
        expect(running.gpus?.[0]?.uuid).toBe(expected);
        expect(device0(ckpt, pid ?? -1)?.uuid).toBe(expected);
      }
      const done = await h.waitFor(task.id, undefined, 30_000);
      expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
      const out = readFileSync(task.stdoutPath, 'utf8');
      expect(out.match(/^ready/gm)).toHaveLength(1);
      expect(out).toContain(`end device ${expected}`);
      expect(out).toMatch(/^result ok sum=[0-9a-f]+$/m);
    } finally {
      await h.cleanup();
    }
  }, 60_000);
});
