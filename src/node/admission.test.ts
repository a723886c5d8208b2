/**
 * Admission, table-driven: what a submission on an empty two-GPU machine is refused with, and
 * that "can never run here" is said before "exceeds its tenant's quota".
 */
import { describe, expect, it } from 'vitest';
import { GsError } from '../domain/index.js';
import { parsePolicy, type TenantQuota } from '../scheduler/index.js';
import { admit, type AdmissionContext } from './admission.js';
import { localNode } from './placement.js';
import { NO_QUOTA } from './store/tenants.js';

const GiB = 1024 ** 3;
const gpu = (index: number, computeCapability: string) => ({
  index,
  uuid: `GPU-${index}`,
  name: computeCapability === '9.0' ? 'NVIDIA H100 80GB HBM3' : 'NVIDIA A100-SXM4-80GB',
  model: computeCapability === '9.0' ? 'H100-80GB' : 'A100-80GB',
  memoryTotalBytes: 80 * GiB,
  numaNode: null,
  health: 'ok',
  topology: [],
  migMode: 'disabled',
  computeCapability,
  multiprocessorCount: computeCapability === '9.0' ? 132 : 108,
});

function context(computeCapability: string): AdmissionContext {
  const devices = [gpu(0, computeCapability), gpu(1, computeCapability)] as unknown as Parameters<typeof localNode>[0];
  const policy = parsePolicy('binpack');
  if (!policy.ok) throw new Error('binpack');
  return { devices, node: localNode(devices), policy: policy.value };
}

const tenant = (quota: TenantQuota) => ({ name: 'team-a', quota: { ...NO_QUOTA, memoryBytes: quota.memoryBytes ?? null }, quotas: new Map([['team-a', quota]]) });

function refusal(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof GsError) return e.code;
    throw e;
  }
  return 'admitted';
}

describe('admit', () => {
  it.each([
    ['fits the machine and the quota', 'hopper', { command: ['x'], memory: '8Gi' }, { memoryBytes: 16 * GiB }, 'admitted'],
    ['fits the machine, no quota record', 'hopper', { command: ['x'], memory: '8Gi' }, null, 'admitted'],
    ['over the quota alone', 'hopper', { command: ['x'], memory: '32Gi' }, { memoryBytes: 16 * GiB }, 'GS_ERR_QUOTA_EXCEEDED'],
    ['never here (partition on Ampere) and over the quota: never here is said first', 'ampere', { command: ['x'], memory: '32Gi', compute: 50, isolation: 'sm-partition' }, { memoryBytes: 16 * GiB }, 'GS_ERR_UNSATISFIABLE'],
    ['never here (three GPUs of two), within the quota', 'hopper', { command: ['x'], gpus: 3, memory: '1Gi' }, { memoryBytes: 16 * GiB }, 'GS_ERR_UNSATISFIABLE'],
    ['an empty command', 'hopper', { command: [] as string[], memory: '1Gi' }, null, 'GS_ERR_INVALID_ARGUMENT'],
  ])('%s', (_name, arch, input, quota, expected) => {
    const ctx = context(arch === 'hopper' ? '9.0' : '8.0');
    expect(refusal(() => admit(ctx, input, quota === null ? null : tenant(quota)))).toBe(expected);
  });
});

describe('admit with a memo of feasible shapes', () => {
  it('answers as without it, remembers only what fits, and is not fooled by a like request that does not', () => {
    const ctx = { ...context('9.0'), feasible: new Set<string>() };
    expect(refusal(() => admit(ctx, { command: ['x'], memory: '8Gi' }, null))).toBe('admitted');
    expect(ctx.feasible.size).toBe(1);
    expect(refusal(() => admit(ctx, { command: ['y'], memory: '8Gi' }, null))).toBe('admitted');
    expect(ctx.feasible.size).toBe(1);
    expect(refusal(() => admit(ctx, { command: ['x'], gpus: 3, memory: '8Gi' }, null))).toBe('GS_ERR_UNSATISFIABLE');
    expect(refusal(() => admit(ctx, { command: ['x'], gpus: 3, memory: '8Gi' }, null))).toBe('GS_ERR_UNSATISFIABLE');
    expect(ctx.feasible.size).toBe(1);
  });
});
