/**
 * The residency shell's hand-over (residency-shell.ts, apply): a swap-in the planner made room
 * for by swapping another slice out is asked at once with that swap-out (with a wait for room),
 * not after it; its event comes after the swap-out's and carries the split; a swap-out that
 * fails stops the waiting swap-in, unless the outgoing task went away (its memory went with it).
 * SwapSessions is a stand-in whose answers the test gives when it chooses.
 */
import type { Logger } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Task } from '../contract/task.js';
import type { TaskEvents } from './events.js';
import { PENDING_GRACE_MS, ResidencyShell } from './residency-shell.js';
import type { DeviceUsage } from './supervisor.js';
import { SwapSessions, type SwapResult } from './swap.js';

const GPU = 'GPU-a';
const MiB = 2 ** 20;

function deferred(): { promise: Promise<SwapResult>; resolve: (r: SwapResult) => void } {
  let resolve: (r: SwapResult) => void = () => undefined;
  const promise = new Promise<SwapResult>((r) => (resolve = r));
  return { promise, resolve };
}

const ok = (bytes: number, seconds: number, waitSeconds = 0): SwapResult => ({ ok: true, value: { path: 'swap', bytes, residentBytes: 0, seconds, gbps: null, processes: 1, devices: [GPU], waitSeconds } });

const task = (id: string, pid: number): Task => ({ id, pid, priority: 500, gpus: [{ uuid: GPU, memoryBytes: 64 * MiB }], regionPath: `/nonexistent/${id}/region` }) as unknown as Task;

/** Two 60 MiB slices on a 100 MiB card: the shell swaps `a` out for room, then `a` wants in after b's quantum. */
async function setup() {
  vi.spyOn(SwapSessions, 'swappable').mockReturnValue(true);
  let now = 1_000_000;
  const calls: string[] = [];
  const recorded: { type: string; id: string | null; data: Record<string, unknown> }[] = [];
  const pending = new Map<string, ReturnType<typeof deferred>>();
  const wantsIn = new Map<string, () => void>();
  const swaps = {
    out: vi.fn((id: string, _dir: string, _pgid: number, park?: { onWantsIn: () => void }) => {
      calls.push(`out ${id}`);
      if (park) wantsIn.set(id, park.onWantsIn);
      const d = deferred();
      pending.set(`out ${id}`, d);
      return d.promise;
    }),
    in: vi.fn((id: string, _pgid: number, _parked: boolean, roomWaitMs: number) => {
      calls.push(`in ${id} ${roomWaitMs}`);
      const d = deferred();
      pending.set(`in ${id}`, d);
      return d.promise;
    }),
    stopIn: vi.fn((id: string) => {
      calls.push(`stop ${id}`);
      return Promise.resolve();
    }),
    watch: vi.fn(() => Promise.resolve()),
    unwatch: vi.fn(),
    answerRoom: vi.fn(() => Promise.resolve()),
  };
  const tasks = [task('a', 101), task('b', 102)];
  const usage = (): DeviceUsage[] => [{ memoryBytes: 60 * MiB, kernelsLaunched: 0 } as unknown as DeviceUsage];
  const shell = new ResidencyShell({
    settings: { idleMs: 3_600_000, quantumMs: 30_000, maxWaitMs: 60_000, headroomBytes: 0 },
    tickMs: 3_600_000,
    gpus: () => [{ uuid: GPU, capacityBytes: 100 * MiB }],
    running: () => tasks,
    usage,
    lifecycleBusy: () => false,
    swaps: swaps as unknown as SwapSessions,
    events: { record: (type: string, id: string | null, data: Record<string, unknown>) => recorded.push({ type, id, data }) } as unknown as TaskEvents,
    log: { info: () => undefined, warn: () => undefined } as unknown as Logger,
    now: () => now,
  });
  const settle = () => new Promise((r) => setTimeout(r, 5));
  // The card is over: a goes out for room.
  shell.tick();
  await settle();
  expect(calls).toEqual(['out a']);
  pending.get('out a')?.resolve(ok(60 * MiB, 0.5));
  await settle();
  expect(shell.parked('a')).toBe(true);
  // b's quantum passes; a's program launches: a hand-over (b out for a, a in).
  now += 31_000;
  wantsIn.get('a')?.();
  await settle();
  return { shell, calls, recorded, pending, settle, swaps, advance: (ms: number) => (now += ms) };
}

describe('ResidencyShell hand-over', () => {
  afterEach(() => vi.restoreAllMocks());

  it('asks the swap-in at once with the swap-out it waits for, and records the split after the swap-out', async () => {
    const { shell, calls, recorded, pending, settle } = await setup();
    // Both asked before either answered; the swap-in with its wait for room.
    expect(calls).toEqual(['out a', 'out b', 'in a 30000']);
    // The swap-in answers first (it may: its room came from b's releases before b's answer).
    pending.get('in a')?.resolve(ok(60 * MiB, 1.0, 0.2));
    await settle();
    expect(recorded.some((e) => e.type === 'task.swapped-in' && e.id === 'a')).toBe(false);
    // Until then both count as busy: a look meanwhile asks nothing more of them.
    shell.tick();
    await settle();
    expect(calls).toEqual(['out a', 'out b', 'in a 30000']);
    pending.get('out b')?.resolve(ok(60 * MiB, 0.9));
    await settle();
    const types = recorded.map((e) => `${e.type} ${e.id}`);
    expect(types.indexOf('task.swapped-out b')).toBeGreaterThanOrEqual(0);
    expect(types.indexOf('task.swapped-in a')).toBeGreaterThan(types.indexOf('task.swapped-out b'));
    const ho = recorded.find((e) => e.type === 'task.swapped-in' && e.id === 'a')?.data;
    expect(ho?.['handover']).toMatchObject({ from: ['b'], outSeconds: 0.9, inSeconds: 1, waitSeconds: 0.2 });
    const h = ho?.['handover'] as Record<string, number>;
    expect(h['wallSeconds']).toBeGreaterThanOrEqual(h['outWallSeconds'] ?? Infinity);
    // a went out for room, not for a turn: no turn's lost share
    expect(ho?.['lostShare']).toBeUndefined();
    expect(shell.parked('a')).toBe(false);
    expect(shell.parked('b')).toBe(true);
    shell.close();
  });

  it('stops the waiting swap-in when the swap-out it waits for fails', async () => {
    const { shell, calls, recorded, pending, settle } = await setup();
    pending.get('out b')?.resolve({ ok: false, code: 'swap-refused', message: 'process 102: swap-out failed (driver)' });
    await settle();
    expect(calls).toContain('stop a');
    pending.get('in a')?.resolve({ ok: false, code: 'swap-refused', message: 'process 101: no room (gpu-memory)' });
    await settle();
    expect(recorded.map((e) => `${e.type} ${e.id}`)).toEqual(expect.arrayContaining(['task.swap-out-refused b', 'task.swap-in-refused a']));
    // a stays out (it asks again), b stays in
    expect(shell.parked('a')).toBe(true);
    expect(shell.parked('b')).toBe(false);
    shell.close();
  });

  it('leaves a slice whose memory another process maps (exported) out of the plans for 30 s, not asked again at every look', async () => {
    const { shell, calls, pending, settle, advance } = await setup();
    pending.get('out b')?.resolve({ ok: false, code: 'swap-refused', message: 'process 102: 1 mapping(s) open in other processes (exported)', libraryCode: 'exported' });
    pending.get('in a')?.resolve({ ok: false, code: 'swap-refused', message: 'process 101: stopped (state)' });
    await settle();
    const asked = () => calls.filter((c) => c === 'out b').length;
    expect(asked()).toBe(1);
    advance(1_000);
    shell.tick();
    await settle();
    expect(asked()).toBe(1);
    advance(30_000);
    shell.tick();
    await settle();
    expect(asked()).toBe(2);
    shell.close();
  });

  it('lets the swap-in wait on when the outgoing task went away mid-swap-out (its memory went with it)', async () => {
    const { shell, calls, pending, settle } = await setup();
    pending.get('out b')?.resolve({ ok: false, code: 'swap-refused', message: 'process 102 went away during the swap (gone)', gone: true });
    await settle();
    expect(calls).not.toContain('stop a');
    pending.get('in a')?.resolve(ok(60 * MiB, 0.4, 0.3));
    await settle();
    expect(shell.parked('a')).toBe(false);
    shell.close();
  });
});

describe('ResidencyShell with a task not swappable yet', () => {
  afterEach(() => vi.restoreAllMocks());

  /**
   * A high-priority active 36 MiB slice and a low-priority one starting (promised 64 MiB,
   * holding `lowBytes`) on a 64 MiB card; one look at each time of `at` (ms after the first).
   */
  async function look(pending: boolean, o: { lowBytes?: number; at?: readonly number[]; swapOn?: boolean } = {}) {
    vi.spyOn(SwapSessions, 'swappable').mockImplementation((dir: string) => dir.includes('/high/'));
    vi.spyOn(SwapSessions, 'pending').mockReturnValue(pending);
    const calls: string[] = [];
    const swaps = {
      out: vi.fn((id: string) => {
        calls.push(`out ${id}`);
        return Promise.resolve(ok(36 * MiB, 0.1));
      }),
      in: vi.fn(() => Promise.resolve(ok(36 * MiB, 0.1))),
      stopIn: vi.fn(() => Promise.resolve()),
      watch: vi.fn(() => Promise.resolve()),
      unwatch: vi.fn(),
      answerRoom: vi.fn(() => Promise.resolve()),
    };
    const high = { ...task('high', 201), priority: 900 } as Task;
    const low = { ...task('low', 202), priority: 100 } as Task;
    let launches = 0;
    let now = 1_000_000;
    const lowBytes = o.lowBytes ?? 0;
    const shell = new ResidencyShell({
      settings: { idleMs: 3_600_000, quantumMs: 30_000, maxWaitMs: 60_000, headroomBytes: 0 },
      tickMs: 3_600_000,
      gpus: () => [{ uuid: GPU, capacityBytes: 64 * MiB }],
      running: () => [high, low],
      usage: (id) => (id === 'high' ? [{ memoryBytes: 36 * MiB, kernelsLaunched: ++launches } as unknown as DeviceUsage] : lowBytes > 0 ? [{ memoryBytes: lowBytes, kernelsLaunched: 0 } as unknown as DeviceUsage] : null),
      lifecycleBusy: () => false,
      ...(o.swapOn === undefined ? {} : { swapOn: (t: Task) => t.id !== 'low' || o.swapOn === true }),
      swaps: swaps as unknown as SwapSessions,
      events: { record: () => undefined } as unknown as TaskEvents,
      log: { info: () => undefined, warn: () => undefined } as unknown as Logger,
      now: () => now,
    });
    const looks: string[][] = [];
    for (const at of o.at ?? [0]) {
      now = 1_000_000 + at;
      shell.tick();
      await new Promise((r) => setTimeout(r, 5));
      looks.push([...calls]);
    }
    shell.close();
    return o.at === undefined ? calls : looks;
  }

  it('counts a starting task whose processes run the library at what it holds: the higher-priority active slice stays', async () => {
    expect(await look(true)).toEqual([]);
  });

  it('counts one with a CUDA process outside the library at its promise: room is made for it', async () => {
    expect(await look(false)).toEqual(['out high']);
  });

  it(`bounds the wait for a socket: ${PENDING_GRACE_MS} ms after its first GPU memory a slice still without one counts at its promise`, async () => {
    // 8 MiB held (through allocations that open no socket, e.g. cuMemAllocAsync): pending at
    // first (36 + 8 fits the 64 MiB card), then counted at its 64 MiB promise: room is made.
    expect(await look(true, { lowBytes: 8 * MiB, at: [0, PENDING_GRACE_MS - 1000, PENDING_GRACE_MS + 1000] })).toEqual([[], [], ['out high']]);
    // Holding nothing yet (not at the GPU): no bound runs.
    expect(await look(true, { at: [0, 10 * PENDING_GRACE_MS] })).toEqual([[], []]);
  });

  it('counts a task started without slice swap at its promise at once (it never gets a socket)', async () => {
    expect(await look(true, { swapOn: false })).toEqual(['out high']);
    expect(await look(true, { swapOn: true })).toEqual([]);
  });
});
