/**
 * Waiting for room under memory overcommit (issue 22; native/shim/SWAP.md "Waiting for room"):
 * the real daemon with --swap and an overcommit section on the simulated backend, fake-phases
 * on the fake CUDA driver under the real libgpushare, the fake's card SHARED by the tasks
 * (sharedMemory: one 72 MiB card, as the processes of a real GPU share its memory). The
 * planner's card is 64 MiB (the simulated H100's 81559 MiB less a headroom of 81495 MiB).
 * Two tasks of 36 MiB cannot both be on the card: the second's allocation fails in the
 * driver, its library asks the daemon for room and waits; the first is swapped out at the end
 * of its quantum, the second gets its memory (no out-of-memory), and they take turns. With a
 * higher-priority active slice on the card, the lower one's wait ends in out-of-memory at the
 * bound, with an event that says who held the card.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/cli.js';
import { Harness, waitForOutput } from './harness.js';
import { MiB, PHASES, type Event } from './overcommit-helpers.js';

describe('an allocation waits for the room overcommit makes', () => {
  const h = new Harness();
  let fakeFor: (name: string) => string = () => '';
  const events = async (id: string): Promise<Event[]> => (await h.client.json<Event[]>('GET', '/v1/events?since=0&limit=10000')).filter((e) => e.taskId === id);
  beforeAll(async () => {
    expect(existsSync(PHASES), `${PHASES} is built by npm run build`).toBe(true);
    const config = join(h.dir, 'overcommit-room.json');
    // No slice here is ever idle (a minute without a launch): turns and priorities decide, and a
    // loaded machine's pause in a task's launches never reads as idleness.
    writeFileSync(config, JSON.stringify({ swap: true, overcommit: { gpus: { '0': 1.5 }, idleSeconds: 60, timeshareQuantumSeconds: 2, maxWaitSeconds: 4, headroom: '81495Mi' } }));
    await h.start(['--config', config], { GPUSHARE_CUDA_PATH: `${REPO_ROOT}build/native/fake/libcuda.so.1` });
    const gpus = await h.client.json<{ gpus: { uuid: string }[] }>('GET', '/v1/gpus');
    // One card per test, shared by its tasks (the busy directory names the card's file).
    fakeFor = (name) => {
      const dir = join(h.dir, `card-${name}`);
      mkdirSync(dir, { recursive: true });
      return JSON.stringify({ contextBytes: 2 * MiB, busyDir: dir, sharedMemory: true, devices: gpus.gpus.map((g) => ({ uuid: g.uuid, name: 'NVIDIA H100 80GB HBM3', totalMemory: 72 * MiB })) });
    };
  });
  afterAll(async () => {
    await h.cleanup();
  });

  it('time-shares two tasks the card cannot hold at once: the second waits for room, the first goes out at its quantum, nobody runs out of memory', async () => {
    const fake = fakeFor('turns');
    const first = await h.detach(['--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '36', '1', 'work:7000']);
    await waitForOutput(await h.task(first), 'ready');
    const second = await h.detach(['--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '36', '2', 'work:5000']);
    const done = await Promise.all([first, second].map((id) => h.waitFor(id, undefined, 50_000)));
    for (const t of done) {
      const err = existsSync(t.stderrPath) ? readFileSync(t.stderrPath, 'utf8') : '';
      expect(err).not.toMatch(/failed: CUresult 2/);
      expect(t.exitCode).toBe(0);
      expect(readFileSync(t.stdoutPath, 'utf8')).toMatch(/^result ok$/m);
    }
    const [firstEvents, secondEvents] = await Promise.all([events(first), events(second)]);
    const types = secondEvents.map((e) => e.type);
    // The second's allocation asked for its 36 MiB and waited; room came from the first's turn.
    expect(secondEvents.find((e) => e.type === 'task.wants-room')?.data).toMatchObject({ bytes: 36 * MiB });
    const made = secondEvents.filter((e) => e.type === 'task.room-made');
    expect(made.at(-1)?.data).toMatchObject({ bytes: 36 * MiB });
    // Within the library's own bound (maxWait 4 s + 5 s): the daemon's room came, not the library's give-up.
    for (const m of made) expect(Number(m.data['waitedMs'])).toBeLessThan(9000);
    expect(types.indexOf('task.room-made')).toBeGreaterThan(types.indexOf('task.wants-room'));
    // The first went out before the room the second got (for it at its quantum's end; or, when
    // the daemon had not yet seen the first's memory and granted room the card did not have,
    // because the card was then over: the second's retry waited again meanwhile).
    const out = firstEvents.find((e) => e.type === 'task.swapped-out');
    expect(out?.data).toMatchObject({ swappedBytes: 36 * MiB });
    if (out?.data['for'] !== null) expect(out?.data['for']).toBe(second);
    expect(['turn', 'bound', 'room']).toContain(out?.data['reason']);
    expect(out?.seq ?? Infinity).toBeLessThan(made.at(-1)?.seq ?? 0);
    // ... and the first came back in for its turn.
    expect(firstEvents.some((e) => e.type === 'task.swapped-in')).toBe(true);
    expect(secondEvents.some((e) => e.type === 'task.wants-room-refused')).toBe(false);
  }, 70_000);

  // The low task reaches the GPU a second after it starts (as a program's imports take): for
  // that second its processes have no control socket yet. It was once counted at its whole
  // promise then, the card read over, and the room rule swapped the high task out for memory
  // nobody held; the low one's allocation was granted when it came while the high one was out
  // (the open race of sessions 21-22, under load; the delay here makes that window certain).
  // The high task works until the low one has ended (not for a fixed time, which a loaded
  // machine's slow start of the low task could outlast: the card then free, the low one's
  // allocation rightly granted).
  it('never swaps out a higher-priority active slice for a lower one: the wait ends at the bound in out-of-memory, said in an event', { timeout: 60_000 }, async () => {
    const fake = fakeFor('priority');
    const lowEnded = join(h.dir, 'card-priority', 'low-ended');
    const high = await h.detach(['--priority', 'high', '--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', PHASES, '36', '1', `until:${lowEnded}`]);
    await waitForOutput(await h.task(high), 'ready');
    const started = Date.now();
    const low = await h.detach(['--priority', 'low', '--mem', '64Mi', '-e', `GPUSHARE_FAKE_CUDA=${fake}`, '--', '/bin/sh', '-c', 'sleep 1 && exec "$0" "$@"', PHASES, '36', '2', 'work:1000']);
    let lowDone: Awaited<ReturnType<typeof h.waitFor>>;
    try {
      lowDone = await h.waitFor(low, undefined, 30_000);
    } finally {
      writeFileSync(lowEnded, '');
    }
    const waited = Date.now() - started;
    // Should it ever fail, the two tasks' events say how.
    const story = async (): Promise<string> => [...(await events(high)).map((e) => `high ${e.type} ${JSON.stringify(e.data)}`), ...(await events(low)).map((e) => `low ${e.type} ${JSON.stringify(e.data)}`)].join('\n');
    expect(lowDone.exitCode, await story()).not.toBe(0);
    expect(readFileSync(lowDone.stderrPath, 'utf8')).toMatch(/cuMemAlloc_v2 failed: CUresult 2/);
    expect(waited).toBeGreaterThanOrEqual(4000);
    const refused = (await events(low)).find((e) => e.type === 'task.wants-room-refused');
    expect(refused?.data).toMatchObject({ bytes: 36 * MiB, maxWaitMs: 4000, heldBy: [high] });
    expect(Number(refused?.data['waitedMs'])).toBeGreaterThanOrEqual(4000);
    // Room is granted from the regions as they are when the wants-room comes (the supervisor's
    // sample can be a second old, from before the high task allocated: granted from it, the
    // room did not exist, the card then read over and the room rule took the high task).
    expect((await events(high)).some((e) => e.type === 'task.swapped-out'), await story()).toBe(false);
    const highDone = await h.waitFor(high, undefined, 30_000);
    expect(highDone.exitCode).toBe(0);
    expect(readFileSync(highDone.stdoutPath, 'utf8')).toMatch(/^result ok$/m);
  });
});
