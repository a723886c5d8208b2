/** Builders for tests: small clusters and requests with sensible defaults. */
import { PRIORITY_LEVELS, type SliceRequest } from '../../domain/index.js';
import type { GpuLinkInfo, GpuSpec, MigLayout, NodeSpec, PlacementRequest } from '../types.js';

export const GIB = 2 ** 30;

export function gpu(index: number, over: Partial<GpuSpec> = {}): GpuSpec {
  return {
    index,
    uuid: `GPU-${index}`,
    model: 'H100-80GB',
    name: 'NVIDIA H100 80GB HBM3',
    memoryBytes: 80 * GIB,
    computeMilli: 1000,
    numaNode: null,
    health: 'ok',
    links: [] as GpuLinkInfo[],
    mig: null as MigLayout | null,
    // An H100's 132 SMs in groups of 8 (domain/smpartition.ts's default layout).
    sm: { ok: true, layout: { total: 132, min: 8, step: 8, groupable: 128 } },
    ...over,
  };
}

export function node(name: string, gpus: number | GpuSpec[], over: Partial<NodeSpec> = {}): NodeSpec {
  const list = typeof gpus === 'number' ? Array.from({ length: gpus }, (_, i) => gpu(i, { uuid: `${name}-GPU-${i}` })) : gpus;
  return { name, cpuMilli: 64_000, memoryBytes: 512 * GIB, gpus: list, ...over };
}

export function slice(over: Partial<SliceRequest> = {}): SliceRequest {
  return {
    gpus: 1,
    memory: null,
    compute: null,
    priority: PRIORITY_LEVELS.normal,
    isolation: 'time-slice',
    migProfile: null,
    models: { include: [], exclude: [] },
    uuids: { include: [], exclude: [] },
    numaNode: null,
    ...over,
  };
}

export function request(over: Partial<SliceRequest> = {}, extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return { id: 'req', slice: slice(over), cpuMilli: 1000, memoryBytes: GIB, tenant: null, gang: null, suspendable: false, policy: null, ...extra };
}

/** A share of each GPU: `fraction` of memory and compute. */
export function share(fraction: number, over: Partial<SliceRequest> = {}, extra: Partial<PlacementRequest> = {}): PlacementRequest {
  return request({ memory: { kind: 'fraction', fraction }, compute: fraction, ...over }, extra);
}
