/**
 * Where a move goes (move-plan.ts), table-driven on a machine of two H100s and an A100: the
 * engine places the slice on the GPU asked for, or the refusal says which check refused.
 */
import { describe, expect, it } from 'vitest';
import { parseSliceRequest } from '../domain/index.js';
import { buildSnapshot, createPrng, parsePolicy, type Placement, type Policy } from '../scheduler/index.js';
import type { Task } from '../contract/task.js';
import { planMove } from './move-plan.js';
import { localNode, taskPlacement } from './placement.js';

const GiB = 1024 ** 3;
const gpu = (index: number, model: string) => ({ index, uuid: `GPU-${index}`, name: model, model, memoryTotalBytes: 80 * GiB, numaNode: null, health: 'ok', topology: [], migMode: 'disabled', computeCapability: '9.0', multiprocessorCount: 132 });
const node = localNode([gpu(0, 'H100-80GB'), gpu(1, 'H100-80GB'), gpu(2, 'A100-80GB')] as unknown as Parameters<typeof localNode>[0]);
const policy = ((): Policy => {
  const p = parsePolicy('binpack');
  if (!p.ok) throw new Error('policy');
  return p.value;
})();

function task(id: string, memory: string, on: readonly number[], tenant: string | null = null): Task {
  const r = parseSliceRequest({ memory, gpus: on.length });
  if (!r.ok) throw new Error('fixture');
  const bytes = r.value.memory?.kind === 'bytes' ? r.value.memory.bytes : 0;
  return { id, state: 'running', request: r.value, priority: r.value.priority, tenant, gpus: on.map((i) => ({ index: i, uuid: `GPU-${i}`, memoryBytes: bytes, computeMilli: 0 })), smRanges: null } as unknown as Task;
}

function move(t: Task, targets: readonly number[], others: readonly Task[] = []) {
  const placements = [t, ...others].map((x) => taskPlacement(x, node)).filter((p): p is Placement => p !== null);
  return planMove({ node, policy, rng: createPrng(1) }, buildSnapshot([node], placements, new Map()), t, targets);
}

describe('planMove', () => {
  it('places the slice on the target, with its memory (its own placement left out)', () => {
    const r = move(task('a', '50Gi', [0]), [1]);
    expect(r).toEqual({ ok: true, gpus: [{ index: 1, uuid: 'GPU-1', memoryBytes: 50 * GiB, computeMilli: 0 }] });
  });

  it.each([
    ['another model', [2], 'model', /GPU 2 is a A100-80GB, task a's GPU 0 a H100-80GB/],
    ['the same GPU', [0], 'same-gpu', /is on GPU 0 already/],
    ['a GPU that is not there', [5], 'unknown-gpu', /no GPU 5 \(it has 0, 1, 2\)/],
    ['too many targets', [1, 0], 'gpu-count', /has 1 GPU\(s\); name as many targets \(got 2\)/],
  ] as const)('refuses %s', (_name, targets, code, text) => {
    const r = move(task('a', '10Gi', [0]), targets);
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.refusal.code).toBe(code);
      expect(r.refusal.text).toMatch(text);
    }
  });

  it('refuses a target without room, with the engine\'s per-GPU reason', () => {
    const r = move(task('a', '50Gi', [0]), [1], [task('b', '40Gi', [1])]);
    expect(r.ok).toBe(false);
    if (!r.ok && r.refusal.code === 'no-room') {
      expect(r.refusal.text).toMatch(/^no room for the slice on GPU 1: /);
      expect(r.refusal.gpus.find((g) => g.gpu === 1)?.reason).toMatch(/Memory/);
    } else throw new Error(`expected no-room, got ${JSON.stringify(r)}`);
  });

  it('moves a two-GPU task position by position', () => {
    const r = move(task('a', '10Gi', [0, 1]), [1, 0]);
    expect(r.ok && r.gpus.map((g) => g.uuid)).toEqual(['GPU-1', 'GPU-0']);
  });
});
