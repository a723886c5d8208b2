import { describe, expect, it } from 'vitest';
import type { NodeReason } from '../../scheduler/index.js';
import { describeRejection } from './reasons.js';

const GIB = 2 ** 30;

describe('describeRejection: one short line per node', () => {
  it.each<[string, NodeReason, string]>([
    [
      'memory short on every GPU: the most free, once',
      { kind: 'tooFewGpus', requested: 1, eligible: 0, gpus: [0, 1, 2, 3].map((gpu) => ({ kind: 'insufficientGpuMemory' as const, gpu, requestedBytes: 40 * GIB, freeBytes: (gpu + 1) * GIB })) },
      '0 of the 1 GPU(s) asked can take it: GPUs 0-3: at most 4 GiB free, 40 GiB asked',
    ],
    [
      'a mix of kinds, GPU lists with gaps',
      {
        kind: 'tooFewGpus',
        requested: 2,
        eligible: 1,
        gpus: [
          { kind: 'gpuUnhealthy', gpu: 0 },
          { kind: 'insufficientCompute', gpu: 2, requestedMilli: 500, freeMilli: 250 },
          { kind: 'gpuUnhealthy', gpu: 3 },
          { kind: 'gpuUnhealthy', gpu: 4 },
        ],
      },
      '1 of the 2 GPU(s) asked can take it: GPUs 0, 3-4: is unhealthy; GPU 2: 25% compute free, 50% asked',
    ],
    ['one UUID not selected', { kind: 'tooFewGpus', requested: 1, eligible: 0, gpus: [{ kind: 'uuidNotSelected', gpu: 1, uuid: 'GPU-x' }] }, '0 of the 1 GPU(s) asked can take it: GPU 1: GPU-x is not a selected UUID'],
    ['a node reason as the engine says it', { kind: 'insufficientCpu', requestedMilli: 2000, freeMilli: 1000 }, '1 CPU free, 2 asked'],
  ])('%s', (_n, reason, text) => {
    expect(describeRejection(reason)).toBe(text);
  });
});
