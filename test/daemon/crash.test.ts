/**
 * The daemon crashed at every step of start, kill, suspend and resume. For each fault point
 * (src/node/faults.ts) a daemon runs with that point armed, is driven into the operation and
 * SIGKILLs itself there; a daemon without the fault then starts on the same state directory.
 * Each case proves the task's command ran exactly once (it appends a line to a file, or
 * fake-train prints `ready` once, and the task has one `task.started` event) and that the
 * task ended as the operation meant: started and run to its exit, killed (within the grace
 * period and a margin of the restart), suspended, or resumed to a correct finish.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskBody } from '../../src/contract/schemas.js';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, sleep, waitForOutput } from './harness.js';

const TRAIN = `${REPO_ROOT}build/native/fake/fake-train`;
const EXEC = `${REPO_ROOT}build/native/gpushare-exec`;
const MiB = 2 ** 20;

let h: Harness;
afterEach(async () => {
  await h.cleanup();
});

interface Event {
  type: string;
  taskId: string | null;
  data: Record<string, unknown>;
}

async function eventTypes(id: string): Promise<string[]> {
  const all = await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000');
  return all.filter((e) => e.taskId === id).map((e) => e.type);
}

function lines(path: string): string[] {
  return existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter((l) => l !== '') : [];
}

/** A request the daemon dies in the middle of: no answer comes back. */
async function diesDuring(request: Promise<unknown>): Promise<void> {
  await expect(request).rejects.toThrow();
  expect(await h.died()).toBe('SIGKILL');
}

/**
 * A submission whose start the daemon dies in. The answer comes once the task is stored, and the
 * start runs after it (queue.ts: one pass per turn of the event loop), so the 201 usually gets
 * out before the crash; either way the task is found in the database (onlyTask).
 */
async function diesStarting(request: Promise<unknown>): Promise<void> {
  await request.catch(() => undefined);
  expect(await h.died()).toBe('SIGKILL');
}

/** The one task in the dead daemon's database (submitted as it died): id and state. */
function onlyTask(): { id: string; state: string } {
  const db = new Database(join(h.stateDir, 'gpushare.db'));
  try {
    const rows = db.prepare('SELECT id, state FROM tasks').all() as { id: string; state: string }[];
    expect(rows).toHaveLength(1);
    return rows[0] as { id: string; state: string };
  } finally {
    db.close();
  }
}

/** A shell command that records each run in `ran`, then waits for `go` and exits 3. */
function recordsRuns(dir: string, body = ''): string[] {
  return ['sh', '-c', `echo ran >> ${join(dir, 'ran')}; ${body} while [ ! -e ${join(dir, 'go')} ]; do sleep 0.02; done; exit 3`];
}

describe('a daemon crashed while starting a task', () => {
  it.each([
    ['start.after-intent', false],
    ['start.after-spawn', true],
    ['start.after-commit', true],
  ] as const)('%s: the restarted daemon runs the command exactly once (adopted: %s)', async (point, adopted) => {
    h = new Harness();
    await h.start([], { GPUSHARE_FAULT: point });
    await diesStarting(h.client.json('POST', '/v1/tasks', { command: recordsRuns(h.dir), memory: '1Gi' }));
    const before = onlyTask();
    expect(before.state).toBe(point === 'start.after-commit' ? 'running' : 'starting');
    if (point === 'start.after-intent') expect(existsSync(join(h.stateDir, 'tasks', before.id, 'claim'))).toBe(false);
    await h.start();
    const running = await h.waitFor(before.id, (t) => t.state === 'running');
    expect(running.adopted).toBe(adopted);
    expect(running.gpus).toHaveLength(1);
    h.extraPids.add(running.pid ?? -1);
    await sleep(100);
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
    writeFileSync(join(h.dir, 'go'), '');
    expect(await h.waitFor(before.id)).toMatchObject({ state: 'exited', exitCode: 3 });
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
    expect((await eventTypes(before.id)).filter((t) => t === 'task.started')).toHaveLength(1);
  }, 30_000);

  it('a wrapper of the dead daemon that claimed the launch late is adopted, never doubled', async () => {
    h = new Harness();
    await h.start([], { GPUSHARE_FAULT: 'start.after-intent' });
    await diesStarting(h.client.json('POST', '/v1/tasks', { command: recordsRuns(h.dir), memory: '1Gi' }));
    const task = onlyTask();
    // What the dead daemon's spawn would have done had it run a moment before the crash.
    const files = join(h.stateDir, 'tasks', task.id);
    mkdirSync(files, { recursive: true }); // as launch() would have
    const { spawn } = await import('node:child_process');
    const late = spawn(EXEC, ['--claim', join(files, 'claim'), join(files, 'exit-status'), '--', ...recordsRuns(h.dir)], { detached: true, stdio: 'ignore' });
    late.unref();
    h.extraPids.add(late.pid ?? -1);
    while (lines(join(h.dir, 'ran')).length === 0) await sleep(10);
    expect(existsSync(join(files, 'claim'))).toBe(true);
    await h.start();
    const running = await h.waitFor(task.id, (t) => t.state === 'running');
    expect(running).toMatchObject({ pid: late.pid, adopted: true });
    writeFileSync(join(h.dir, 'go'), '');
    expect(await h.waitFor(task.id)).toMatchObject({ state: 'exited', exitCode: 3 });
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
  }, 30_000);
});

describe('the launch claim in a daemon without faults', () => {
  it("a command's own exit 120 (the wrapper's 'claim taken' status) is taken as its exit code", async () => {
    h = new Harness();
    await h.start();
    const task = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: recordsRuns(h.dir, 'exit 120;'), memory: '1Gi' });
    expect(await h.waitFor(task.id)).toMatchObject({ state: 'exited', exitCode: 120, adopted: false });
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
  }, 30_000);
});

describe('a daemon crashed while killing a task', () => {
  /** A task running under a daemon armed with `point`; it has run once. `body` runs first in its shell. */
  async function runningTask(point: string, body: (dir: string) => string): Promise<TaskBody> {
    h = new Harness();
    await h.start([], { GPUSHARE_FAULT: point });
    const id = (await h.client.json<TaskBody>('POST', '/v1/tasks', { command: recordsRuns(h.dir, body(h.dir)), memory: '1Gi' })).id;
    const task = await h.waitFor(id, (t) => t.state === 'running');
    h.extraPids.add(task.pid ?? -1);
    while (lines(join(h.dir, 'ran')).length === 0) await sleep(10);
    return task;
  }

  it('kill.after-request: the restarted daemon sends the signal the dead one never sent', async () => {
    const task = await runningTask('kill.after-request', (dir) => `trap 'echo term >> ${join(dir, 'term')}; exit 0' TERM;`);
    await diesDuring(h.client.json('POST', `/v1/tasks/${task.id}/kill`, { graceSeconds: 30 }));
    expect(lines(join(h.dir, 'term'))).toEqual([]);
    await h.start();
    expect(await h.waitFor(task.id)).toMatchObject({ state: 'killed', exitCode: 0, signal: null });
    expect(lines(join(h.dir, 'term'))).toEqual(['term']);
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
  }, 30_000);

  it('kill.after-signal: the escalation to SIGKILL happens at the stored deadline after the restart', async () => {
    const task = await runningTask('kill.after-signal', () => "trap '' TERM;");
    const graceMs = 2500;
    const killAt = Date.now();
    await diesDuring(h.client.json('POST', `/v1/tasks/${task.id}/kill`, { graceSeconds: graceMs / 1000 }));
    await h.start();
    const restartedAt = Date.now();
    const done = await h.waitFor(task.id, undefined, 15_000);
    expect(done).toMatchObject({ state: 'killed', signal: 'SIGKILL' });
    // TERM is ignored: only the SIGKILL at the deadline ends it, and no later than the restart allows.
    expect(done.finishedAt ?? 0).toBeGreaterThanOrEqual(killAt + graceMs - 50);
    expect(done.finishedAt ?? 0).toBeLessThanOrEqual(Math.max(killAt + graceMs, restartedAt) + 2000);
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
  }, 30_000);

  it('kill.after-escalation: the task killed by the dead daemon is recorded killed', async () => {
    const task = await runningTask('kill.after-escalation', () => "trap '' TERM;");
    await h.client.json('POST', `/v1/tasks/${task.id}/kill`, { graceSeconds: 0.2 });
    expect(await h.died()).toBe('SIGKILL');
    await h.start();
    const done = await h.waitFor(task.id, undefined, 10_000);
    expect(done.state).toBe('killed');
    expect(lines(join(h.dir, 'ran'))).toEqual(['ran']);
  }, 30_000);
});

/** fake-train's fake driver on the machine's GPU. */
function fakeCuda(uuids: readonly string[]): string {
  return JSON.stringify({ contextBytes: 4 * MiB, devices: uuids.map((uuid) => ({ uuid, name: 'NVIDIA H100 80GB HBM3' })) });
}

/**
 * A daemon whose tasks and checkpoint calls use the fake driver (see suspend.test.ts), armed with
 * `fault` if given. Its fault points are the CUDA checkpoint API path's, so slice swap (on by
 * default, which would suspend these tasks by swap and never reach them) is off: --no-swap. A
 * daemon killed mid-swap is tested in move.test.ts and native/shim/tests/swap_test.c.
 */
async function startCheckpointing(fault?: string, simulate = '1xH100-80GB'): Promise<string[]> {
  const ckpt = join(h.dir, 'ckpt');
  mkdirSync(ckpt, { recursive: true });
  // Tasks get no daemon variable unless passed on: their fake driver meets the daemon's in ckpt.
  await h.start(['--no-swap', '--pass-env', 'GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR'], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1`, GPUSHARE_FAKE_CUDA_CHECKPOINT_DIR: ckpt, ...(fault === undefined ? {} : { GPUSHARE_FAULT: fault }) }, simulate);
  const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
  return gpus.gpus.map((g) => g.uuid);
}


/** fake-train's steps (30 ms each) in the suspend and resume cases. */
const STEPS = 40;
/** Where the new daemon must find the task still running: long enough to outlive a restart on a loaded machine. */
const LONG_STEPS = 200;

describe('a daemon crashed while suspending or resuming a task', () => {
  /** fake-train under a daemon armed with `point`, suspended first when the point is a resume's. */
  async function training(point: string, simulate?: string, memory = '8Gi', steps = STEPS): Promise<TaskBody> {
    h = new Harness();
    const uuids = await startCheckpointing(point, simulate);
    const created = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: [TRAIN, String(steps), '30', '8', '5'], env: { GPUSHARE_FAKE_CUDA: fakeCuda(uuids) }, memory });
    const task = await h.waitFor(created.id, (t) => t.state === 'running');
    h.extraPids.add(task.pid ?? -1);
    await waitForOutput(task, 'ready');
    if (point.startsWith('resume.')) expect((await h.client.json<TaskBody>('POST', `/v1/tasks/${task.id}/suspend`)).state).toBe('suspended');
    return task;
  }

  /** It ran once (one `ready`, one start) and trained to a correct end. */
  async function finishedOnce(task: TaskBody, steps = STEPS): Promise<void> {
    const done = await h.waitFor(task.id, undefined, 30_000);
    expect(done).toMatchObject({ state: 'exited', exitCode: 0 });
    const out = readFileSync(task.stdoutPath, 'utf8');
    expect(out.match(/^ready/gm)).toHaveLength(1);
    expect(out).toMatch(new RegExp(`^step ${steps}$`, 'm'));
    expect(out).toMatch(/^result ok/m);
    expect((await eventTypes(task.id)).filter((t) => t === 'task.started')).toHaveLength(1);
  }

  // A suspension cut short is finished by the next daemon, and the task then resumes by itself
  // (lifecycle.ts reconcile); one that was recorded stays suspended until resumed.
  it.each(['suspend.after-intent', 'suspend.after-checkpoint'])('%s: finished on restart, then resumed to a correct end', async (point) => {
    // After the intent the task still runs (nothing stopped it yet) until the new daemon suspends it.
    const steps = point === 'suspend.after-intent' ? LONG_STEPS : STEPS;
    const task = await training(point, undefined, '8Gi', steps);
    await diesDuring(h.client.json('POST', `/v1/tasks/${task.id}/suspend`));
    await startCheckpointing();
    await finishedOnce(task, steps);
    const types = await eventTypes(task.id);
    expect(types).toEqual(expect.arrayContaining(['task.suspending', 'task.adopted', 'task.reconciled', 'task.resumed']));
  }, 45_000);

  it('suspend.after-commit: stays suspended across the restart, then resumes on request', async () => {
    const task = await training('suspend.after-commit');
    await diesDuring(h.client.json('POST', `/v1/tasks/${task.id}/suspend`));
    await startCheckpointing();
    await sleep(300);
    expect((await h.task(task.id)).state).toBe('suspended');
    expect((await h.client.json<TaskBody>('POST', `/v1/tasks/${task.id}/resume`)).state).toBe('running');
    await finishedOnce(task);
  }, 45_000);

  it.each(['resume.after-intent', 'resume.after-restore', 'resume.after-commit'])('%s: running again after the restart, to a correct end', async (point) => {
    const task = await training(point);
    await diesDuring(h.client.json('POST', `/v1/tasks/${task.id}/resume`));
    await startCheckpointing();
    await finishedOnce(task);
  }, 45_000);

  it('resume.after-restore onto another GPU: recorded on the GPU it was restored to, not its old one', async () => {
    // Long enough to outlive the restart on a loaded machine, so the new daemon finds it restored.
    const task = await training('resume.after-restore', '2xH100-80GB', '60Gi', LONG_STEPS);
    const own = task.gpus?.[0]?.uuid ?? '';
    // Something else takes its GPU while it is suspended, so it resumes on the other one.
    const blocker = await h.client.json<TaskBody>('POST', '/v1/tasks', { command: ['sleep', '30'], memory: '60Gi', uuids: { include: [own] } });
    h.extraPids.add((await h.waitFor(blocker.id, (t) => t.state === 'running')).pid ?? -1);
    await diesDuring(h.client.json('POST', `/v1/tasks/${task.id}/resume`));
    const uuids = await startCheckpointing(undefined, '2xH100-80GB');
    const other = uuids.find((u) => u !== own);
    // Reconciled at once on restart (every process restored): on a loaded machine it may even have ended by now.
    const reconciled = await h.waitFor(task.id, (t) => t.state !== 'resuming');
    expect(reconciled.state).toBe('running');
    expect(reconciled.gpus?.[0]?.uuid).toBe(other); // what the scheduler counts it on
    expect(await eventTypes(task.id)).toContain('task.reconciled');
    await finishedOnce(task, LONG_STEPS);
    expect(readFileSync(task.stdoutPath, 'utf8')).toMatch(new RegExp(`^end device ${other ?? ''}$`, 'mi'));
  }, 45_000);
});
