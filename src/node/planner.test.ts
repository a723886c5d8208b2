/**
 * The queue planner, table-driven: each queue situation on a two-GPU machine (80 GiB each), and
 * the actions and reasons it must give. No daemon, no processes: snapshots and task records.
 */
import { describe, expect, it } from 'vitest';
import { parseSliceRequest, type SliceRequestInput } from '../domain/index.js';
import { buildSnapshot, createPrng, parsePolicy, type NodeSpec, type Placement, type Policy, type TenantQuota } from '../scheduler/index.js';
import type { Task, TaskGpu } from '../contract/task.js';
import { localNode, taskPlacement } from './placement.js';
import { planQueue, type PlanAction, type PlanInput, type PreemptionPolicy } from './planner.js';

const GiB = 1024 ** 3;
const gpu = (index: number) => ({
  index,
  uuid: `GPU-${index}`,
  name: 'NVIDIA H100 80GB HBM3',
  model: 'H100-80GB',
  memoryTotalBytes: 80 * GiB,
  numaNode: null,
  health: 'ok',
  topology: [],
  migMode: 'disabled',
  computeCapability: '9.0',
  multiprocessorCount: 132,
});
const devices = [gpu(0), gpu(1)] as unknown as Parameters<typeof localNode>[0];
const node: NodeSpec = localNode(devices);

let seq = 0;
/** A task record: queued unless `on` says which GPUs it runs on. */
function task(id: string, slice: SliceRequestInput, more: { tenant?: string; on?: number[]; state?: Task['state']; autoResume?: boolean; sms?: { offset: number; count: number } } = {}): Task {
  const r = parseSliceRequest(slice);
  if (!r.ok) throw new Error(`fixture ${id}: ${r.issues[0]?.message}`);
  const request = r.value;
  const mem = request.memory?.kind === 'bytes' ? request.memory.bytes : 80 * GiB;
  const gpus: TaskGpu[] | null = more.on ? more.on.map((i) => ({ index: i, uuid: `GPU-${i}`, memoryBytes: mem, computeMilli: request.compute === null ? 0 : Math.round(request.compute * 1000) })) : null;
  return {
    id,
    seq: ++seq,
    state: more.state ?? (more.on ? 'running' : 'queued'),
    command: ['true'],
    env: {},
    cwd: '/',
    request,
    priority: request.priority,
    tenant: more.tenant ?? null,
    gpus,
    autoResume: more.autoResume ?? false,
    smRanges: more.sms && more.on ? more.on.map((i) => ({ uuid: `GPU-${i}`, offset: more.sms?.offset ?? 0, count: more.sms?.count ?? 0 })) : null,
    killRequested: false,
    preemptedBy: null,
    waiting: null,
  } as unknown as Task;
}

interface Case {
  readonly name: string;
  /** Running tasks (placements), and whether they can be suspended. */
  readonly running?: readonly Task[];
  readonly suspendable?: boolean;
  readonly queue: readonly Task[];
  readonly quotas?: Record<string, TenantQuota>;
  readonly preemption?: PreemptionPolicy;
  readonly suspending?: PlanInput['suspending'];
  /** Per queue task, in order: the action's kind and what its reason or placement must hold. */
  readonly expected: readonly Record<string, unknown>[];
  readonly blocked: string | null;
}

const policy = ((): Policy => {
  const p = parsePolicy('binpack');
  if (!p.ok) throw new Error('policy');
  return p.value;
})();

function plan(c: Case) {
  const running = c.running ?? [];
  const placements = running.map((t) => taskPlacement(t, node)).filter((p): p is Placement => p !== null).map((p) => ({ ...p, suspendable: c.suspendable ?? true }));
  return planQueue(
    { node, policy, rng: createPrng(7) },
    {
      snapshot: buildSnapshot([node], placements, new Map(Object.entries(c.quotas ?? {}))),
      queue: c.queue,
      preemption: c.preemption ?? 'suspend',
      suspendable: c.suspendable ?? true,
      suspending: c.suspending ?? [],
    },
  );
}

/** What a test checks of an action: its kind, its task and its reason (or where it goes). */
function shape(a: PlanAction): Record<string, unknown> {
  switch (a.kind) {
    case 'start':
    case 'resume':
      return { kind: a.kind, task: a.task.id, gpus: a.gpus.map((g) => g.index), ...(a.kind === 'start' ? { smRanges: a.smRanges } : {}) };
    case 'preempt':
      return { kind: a.kind, task: a.task.id, victims: a.victims, reason: a.reason };
    case 'wait':
      return { kind: a.kind, task: a.task.id, reason: a.reason, ...(a.message !== undefined ? { message: a.message } : {}) };
  }
}

const half = { memory: '40Gi', compute: 50 };
const big = { memory: '70Gi' };
const CASES: readonly Case[] = [
  {
    name: 'starts every task that fits, in queue order, each on the machine the earlier ones left',
    queue: [task('a', half), task('b', half), task('c', { ...half, gpus: 2 })],
    expected: [
      { kind: 'start', task: 'a' },
      { kind: 'start', task: 'b' },
      { kind: 'wait', task: 'c', reason: { kind: 'noRoom', preemption: 'noVictims' } },
    ],
    blocked: 'c',
  },
  {
    name: 'the first task that does not fit stops the pass: a smaller one behind it waits behind it (no backfill)',
    running: [task('r0', big, { on: [0] }), task('r1', big, { on: [1] })],
    queue: [task('head', big), task('small', { memory: '1Gi' })],
    preemption: 'off',
    expected: [
      {
        kind: 'wait',
        task: 'head',
        reason: {
          kind: 'noRoom',
          preemption: 'off',
          gpus: [
            { gpu: 0, reason: 'insufficientGpuMemory', text: 'GPU 0 has 10 GiB free, 70 GiB asked' },
            { gpu: 1, reason: 'insufficientGpuMemory', text: 'GPU 1 has 10 GiB free, 70 GiB asked' },
          ],
        },
      },
      { kind: 'wait', task: 'small', reason: { kind: 'behind', taskId: 'head' } },
    ],
    blocked: 'head',
  },
  {
    name: "a task held back only by its tenant's memory quota waits without holding up other tenants (read from the decision's quotaMemory)",
    running: [task('mine', { memory: '10Gi' }, { tenant: 'acme', on: [0] })],
    quotas: { acme: { memoryBytes: 20 * GiB } },
    queue: [task('over', { memory: '20Gi' }, { tenant: 'acme' }), task('other', { memory: '20Gi' }, { tenant: 'zeta' })],
    expected: [
      {
        kind: 'wait',
        task: 'over',
        reason: { kind: 'quota', tenant: 'acme', resource: 'memoryBytes', requested: 20 * GiB, remaining: 10 * GiB, text: 'asks 20 GiB of GPU memory; 10 GiB of its memory quota is left' },
        message: 'waiting for tenant quota: asks 20 GiB of GPU memory; 10 GiB of its memory quota is left',
      },
      { kind: 'start', task: 'other' },
    ],
    blocked: null,
  },
  {
    name: "a task held back only by its tenant's GPU-count quota (refused at admission) waits without holding up others",
    running: [task('mine', half, { tenant: 'acme', on: [0] })],
    quotas: { acme: { gpus: 1 } },
    queue: [task('over', half, { tenant: 'acme' }), task('other', half)],
    expected: [
      { kind: 'wait', task: 'over', reason: { kind: 'quota', tenant: 'acme', resource: 'gpus', requested: 1, remaining: 0, text: 'its GPU quota is 1; 1 in use + 1 asked' } },
      { kind: 'start', task: 'other' },
    ],
    blocked: null,
  },
  {
    name: 'a task over its quota that would not fit without it either stops the pass like any other',
    running: [task('r0', big, { tenant: 'acme', on: [0] }), task('r1', big, { on: [1] })],
    quotas: { acme: { memoryBytes: 80 * GiB } },
    preemption: 'off',
    queue: [task('over', big, { tenant: 'acme' }), task('small', { memory: '1Gi' })],
    expected: [
      { kind: 'wait', task: 'over', reason: { kind: 'noRoom', preemption: 'off' } },
      { kind: 'wait', task: 'small', reason: { kind: 'behind', taskId: 'over' } },
    ],
    blocked: 'over',
  },
  {
    name: 'a higher-priority task that does not fit preempts a lower-priority one by suspension',
    running: [task('low', { ...big, priority: 'low' }, { on: [0] }), task('mid', big, { on: [1] })],
    queue: [task('high', { ...big, priority: 'high' })],
    expected: [{ kind: 'preempt', task: 'high', victims: [{ taskId: 'low', action: 'suspend' }], reason: { kind: 'preempting', victims: [{ taskId: 'low', action: 'suspend' }], text: 'making room by preemption: suspending low' } }],
    blocked: 'high',
  },
  {
    name: 'policy suspend never kills: victims that cannot be suspended leave the task waiting (needsKill)',
    running: [task('low', { ...big, priority: 'low' }, { on: [0] }), task('mid', big, { on: [1] })],
    suspendable: false,
    queue: [task('high', { ...big, priority: 'high' })],
    expected: [{ kind: 'wait', task: 'high', reason: { kind: 'noRoom', preemption: 'needsKill' } }],
    blocked: 'high',
  },
  {
    name: 'policy suspend-then-kill kills victims that cannot be suspended',
    running: [task('low', { ...big, priority: 'low' }, { on: [0] }), task('mid', big, { on: [1] })],
    suspendable: false,
    preemption: 'suspend-then-kill',
    queue: [task('high', { ...big, priority: 'high' })],
    expected: [{ kind: 'preempt', task: 'high', victims: [{ taskId: 'low', action: 'kill' }] }],
    blocked: 'high',
  },
  {
    name: 'nothing of lower priority to take: it waits (noVictims)',
    running: [task('r0', { ...big, priority: 'high' }, { on: [0] }), task('r1', { ...big, priority: 'high' }, { on: [1] })],
    queue: [task('high', { ...big, priority: 'high' })],
    expected: [{ kind: 'wait', task: 'high', reason: { kind: 'noRoom', preemption: 'noVictims' } }],
    blocked: 'high',
  },
  {
    name: 'one preemption at a time: while its victims are being suspended, the task waits for them',
    running: [task('mid', big, { on: [1] }), task('r0', big, { on: [0] })],
    suspending: [{ id: 'low', preemptedBy: 'high' }],
    queue: [task('high', { ...big, priority: 'high' })],
    expected: [{ kind: 'wait', task: 'high', reason: { kind: 'preempting', victims: [{ taskId: 'low', action: 'suspend' }] } }],
    blocked: 'high',
  },
  {
    name: 'one preemption at a time: a suspension under way for another reason holds preemption back',
    running: [task('low', { ...big, priority: 'low' }, { on: [0] }), task('mid', big, { on: [1] })],
    suspending: [{ id: 'elsewhere', preemptedBy: null }],
    queue: [task('high', { ...big, priority: 'high' })],
    expected: [{ kind: 'wait', task: 'high', reason: { kind: 'noRoom', preemption: 'otherUnderWay' } }],
    blocked: 'high',
  },
  {
    name: 'a suspended task waiting to resume takes its turn in queue order, on its own GPU',
    running: [task('r0', big, { on: [0] })],
    queue: [task('back', big, { on: [1], state: 'suspended', autoResume: true }), task('next', { memory: '10Gi' })],
    expected: [
      { kind: 'resume', task: 'back', gpus: [1] },
      { kind: 'start', task: 'next', gpus: [0] },
    ],
    blocked: null,
  },
  {
    name: 'a suspended task with no room to resume stops the pass, but is not the blocked head (a submission still pumps)',
    running: [task('r0', big, { on: [0] }), task('r1', big, { on: [1] })],
    queue: [task('back', big, { on: [1], state: 'suspended', autoResume: true }), task('next', { memory: '1Gi' })],
    expected: [
      { kind: 'wait', task: 'back', reason: { kind: 'noRoom', preemption: 'notAsked' } },
      { kind: 'wait', task: 'next', reason: { kind: 'behind', taskId: 'back' } },
    ],
    blocked: null,
  },
  {
    name: 'an SM partition with compute to spare but no free run of SMs (nor a GPU free of time-sliced work) waits for SMs, per GPU why, holding the queue',
    running: [task('p1', { isolation: 'sm-partition', compute: 50, memory: '10Gi' }, { on: [0], sms: { offset: 32, count: 64 } }), task('t1', { memory: '10Gi' }, { on: [1] })],
    queue: [task('p2', { isolation: 'sm-partition', compute: 40, memory: '10Gi' }), task('small', { memory: '1Gi' })],
    expected: [
      {
        kind: 'wait',
        task: 'p2',
        reason: { kind: 'smPartition', gpus: [{ gpu: 0, reason: 'noFreeSmRun' }, { gpu: 1, reason: 'isolationMix' }] },
        message: 'waiting for SMs: GPU 0: no 56 SMs in a row are free (64 of the 128 SMs its driver can partition are free); the longest free run is 32; GPU 1 runs time-sliced work, and SM partitions do not share a GPU with it',
      },
      { kind: 'wait', task: 'small', reason: { kind: 'behind', taskId: 'p2' } },
    ],
    blocked: 'p2',
  },
  {
    name: 'an SM partition goes where its SMs are free, and its placement carries its SM range',
    running: [task('p1', { isolation: 'sm-partition', compute: 50, memory: '10Gi' }, { on: [0], sms: { offset: 0, count: 64 } }), task('t1', { memory: '10Gi' }, { on: [1] })],
    queue: [task('p2', { isolation: 'sm-partition', compute: 40, memory: '10Gi' })],
    expected: [{ kind: 'start', task: 'p2', gpus: [0], smRanges: [{ uuid: 'GPU-0', offset: 64 }] }],
    blocked: null,
  },
];

describe('planQueue', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const p = plan(c);
      expect(p.actions.map(shape)).toMatchObject(c.expected);
      expect(p.actions).toHaveLength(c.queue.length);
      expect(p.blocked?.id ?? null).toBe(c.blocked);
    });
  }

  it('is pure: the same input and PRNG state give the same plan', () => {
    const c = CASES[0];
    if (!c) throw new Error('no case');
    expect(plan(c).actions.map(shape)).toEqual(plan(c).actions.map(shape));
  });
});
