import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readProcStat } from '../../src/node/proc.js';
import { Harness, killGroup, sleep } from './harness.js';

let h: Harness;
afterEach(async () => {
  await h.cleanup();
});

/** Ended, zombie included: a task orphaned by a dead daemon may wait unreaped under a PID 1 that does not reap. */
async function waitGone(pid: number): Promise<void> {
  for (let i = 0; i < 300; i++) {
    const st = readProcStat(pid);
    if (st === null || st.state === 'Z') return;
    await sleep(20);
  }
  throw new Error(`pid ${pid} still alive`);
}

describe('daemon restart', () => {
  it.each(['SIGTERM', 'SIGKILL'] as const)('after %s keeps the running task (re-adopted) and the queued one', async (signal) => {
    h = new Harness();
    await h.start();
    // It waits for a file the test creates, so it is surely still running when the new daemon starts.
    const go = join(h.dir, 'go');
    const running = await h.detach(['--mem', '60Gi', '--', 'sh', '-c', `echo before; while [ ! -e ${go} ]; do sleep 0.02; done; echo after; exit 5`]);
    const first = await h.waitFor(running, (t) => t.state === 'running');
    const queued = await h.detach(['--mem', '50Gi', '--', 'sh', '-c', 'echo queued ran']);
    h.extraPids.add(first.pid ?? -1);

    const follower = h.cli(['run', '--mem', '1Gi', '--priority', 'high', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.02; done`]);
    while ((await h.client.json<{ state: string }[]>('GET', '/v1/tasks')).filter((t) => t.state === 'running').length < 2) await sleep(20);

    let followerErr = '';
    follower.child.stderr?.on('data', (b: Buffer) => (followerErr += b.toString()));
    await h.stop(signal); // with a client attached: the daemon must not wait for it
    // The attached run outlives its daemon too: it says so and tries to reach it again.
    while (!followerErr.includes(`reconnecting to the daemon at ${h.socket}`)) await sleep(20);
    expect(follower.child.exitCode).toBeNull();
    expect(readProcStat(first.pid ?? -1)?.state).not.toBe('Z'); // the task outlives its daemon
    await h.start();

    expect(await h.task(running)).toMatchObject({ state: 'running', adopted: true, pid: first.pid, pidStartTime: first.pidStartTime });
    expect(await h.task(queued)).toMatchObject({ state: 'queued' });
    writeFileSync(go, '');
    // The adopted task is not the new daemon's child; its exit code comes from the wrapper's status file.
    expect(await h.waitFor(running)).toMatchObject({ state: 'exited', exitCode: 5, signal: null });
    expect(await h.waitFor(queued)).toMatchObject({ state: 'exited', exitCode: 0 });
    const followed = await follower.done;
    expect(followed.status).toBe(0);
    expect(followed.stderr).toMatch(/reconnected to the daemon at .*; following task [0-9a-f]{12} again/);
    expect((await h.run(['logs', running])).stdout).toBe('before\nafter\n');
    expect((await h.run(['logs', queued])).stdout).toBe('queued ran\n');
  });

  it('records how a task ended while no daemon was running, or that nobody can know', async () => {
    h = new Harness();
    await h.start();
    const go = join(h.dir, 'go');
    const exits = await h.detach(['--mem', '1Gi', '--', 'sh', '-c', `while [ ! -e ${go} ]; do sleep 0.02; done; exit 9`]);
    const vanishes = await h.detach(['--mem', '1Gi', '--', 'sleep', '30']);
    const a = await h.waitFor(exits, (t) => t.state === 'running');
    const b = await h.waitFor(vanishes, (t) => t.state === 'running');
    await h.stop('SIGKILL');
    writeFileSync(go, '');
    killGroup(b.pid ?? -1); // SIGKILL reaches the wrapper too: no status file is written
    await waitGone(a.pid ?? -1);
    await waitGone(b.pid ?? -1);
    await h.start();
    expect(await h.task(exits)).toMatchObject({ state: 'exited', exitCode: 9 });
    const lost = await h.task(vanishes);
    expect(lost).toMatchObject({ state: 'lost', exitCode: null, signal: null });
    expect(lost.message).toMatch(/how it ended is unknown/);
  });
});
