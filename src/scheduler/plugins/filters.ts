/**
 * The filter plugins: each answers "can this node / this GPU take the request?" with null or a
 * structured reason. Order matters only for which reason is reported first; the engine stops
 * at the first failing filter of a node or GPU.
 */
import type { FilterPlugin } from '../framework.js';
import { chooseMigInstance } from '../mig.js';
import type { GpuReason, GpuSpec } from '../types.js';

/** Node CPU and memory. */
export const nodeResources: FilterPlugin = {
  name: 'nodeResources',
  prepare({ request }) {
    const cpu = request.cpuMilli;
    const mem = request.memoryBytes;
    if (cpu <= 0 && mem <= 0) return null;
    return {
      node(node) {
        if (node.cpuFree < cpu) return { kind: 'insufficientCpu', requestedMilli: cpu, freeMilli: node.cpuFree };
        if (node.memoryFree < mem) return { kind: 'insufficientMemory', requestedBytes: mem, freeBytes: node.memoryFree };
        return null;
      },
    };
  },
};

/** GPUs that fell off the bus or were marked lost take nothing; nor do held ones (cordoned, faulted), each saying why. */
export const health: FilterPlugin = {
  name: 'health',
  prepare({ demand }) {
    if (demand.count === 0) return null;
    return { gpu: (node, i) => healthReason(node.spec.gpus[i]?.health ?? 'lost', i) };
  },
};

function healthReason(h: GpuSpec['health'], gpu: number): GpuReason | null {
  if (h === 'ok') return null;
  if (h === 'lost') return { kind: 'gpuUnhealthy', gpu };
  return h.kind === 'cordoned' ? { kind: 'gpuCordoned', gpu, by: h.by, note: h.note } : { kind: 'gpuFault', gpu, fault: h.fault, code: h.code };
}

/** Model / UUID include and exclude lists, and NUMA binding (the domain's selector semantics). */
export const selectors: FilterPlugin = {
  name: 'selectors',
  prepare({ request, demand }) {
    const s = request.slice;
    const hasModels = s.models.include.length > 0 || s.models.exclude.length > 0;
    const hasUuids = s.uuids.include.length > 0 || s.uuids.exclude.length > 0;
    if (demand.count === 0 || (!hasModels && !hasUuids && s.numaNode === null)) return null;
    // Models repeat across thousands of GPUs: decide each distinct (model, name) pair once.
    const modelOk = new Map<string, boolean>();
    const modelHit = (g: GpuSpec): boolean => {
      const key = `${g.model}\u0000${g.name}`;
      let ok = modelOk.get(key);
      if (ok === undefined) {
        const hit = (needle: string): boolean => {
          const n = needle.toLowerCase();
          return g.model.toLowerCase().includes(n) || g.name.toLowerCase().includes(n);
        };
        ok = (s.models.include.length === 0 || s.models.include.some(hit)) && !s.models.exclude.some(hit);
        modelOk.set(key, ok);
      }
      return ok;
    };
    const includeUuids = new Set(s.uuids.include.map((u) => u.toLowerCase()));
    const excludeUuids = new Set(s.uuids.exclude.map((u) => u.toLowerCase()));
    return {
      gpu(node, i) {
        const g = node.spec.gpus[i];
        if (!g) return { kind: 'gpuUnhealthy', gpu: i };
        if (hasModels && !modelHit(g)) return { kind: 'modelNotSelected', gpu: i, model: g.model };
        if (hasUuids) {
          const u = g.uuid.toLowerCase();
          if ((includeUuids.size > 0 && !includeUuids.has(u)) || excludeUuids.has(u)) return { kind: 'uuidNotSelected', gpu: i, uuid: g.uuid };
        }
        if (s.numaNode !== null && g.numaNode !== s.numaNode) return { kind: 'numaMismatch', gpu: i, numaNode: g.numaNode, requested: s.numaNode };
        return null;
      },
    };
  },
};

/** MIG requests go only to MIG GPUs, other requests only to GPUs without MIG. */
export const migMode: FilterPlugin = {
  name: 'migMode',
  prepare({ demand }) {
    if (demand.count === 0) return null;
    const wantMig = demand.mig;
    return {
      gpu(node, i) {
        const enabled = node.spec.gpus[i]?.mig != null;
        return enabled === wantMig ? null : { kind: 'migMismatch', gpu: i, migEnabled: enabled };
      },
    };
  },
};

/** Exclusive use both ways: an exclusive request needs an idle GPU; nobody joins an exclusive one. */
export const exclusivity: FilterPlugin = {
  name: 'exclusivity',
  prepare({ demand }) {
    if (demand.count === 0) return null;
    const wantAlone = demand.exclusive;
    return {
      gpu(node, i) {
        if (node.gpuExclusive[i]) return { kind: 'heldExclusively', gpu: i };
        const slices = node.gpuSlices[i] ?? 0;
        if (wantAlone && slices > 0) return { kind: 'notIdleForExclusive', gpu: i, slices };
        return null;
      },
    };
  },
};

/** GPU memory and compute left on the GPU (non-MIG). */
export const gpuCapacity: FilterPlugin = {
  name: 'gpuCapacity',
  prepare({ demand }) {
    if (demand.count === 0 || demand.mig) return null;
    return {
      gpu(node, i) {
        const g = node.spec.gpus[i];
        if (!g) return { kind: 'gpuUnhealthy', gpu: i };
        const mem = demand.memoryOn(g);
        const memFree = node.gpuMemoryFree[i] ?? 0;
        if (memFree < mem) return { kind: 'insufficientGpuMemory', gpu: i, requestedBytes: mem, freeBytes: memFree };
        const compute = demand.computeOn(g);
        const computeFree = node.gpuComputeFree[i] ?? 0;
        if (computeFree < compute) return { kind: 'insufficientCompute', gpu: i, requestedMilli: compute, freeMilli: computeFree };
        return null;
      },
    };
  },
};

/** A MIG request needs an instance (existing or creatable) of a suitable profile. */
export const migFit: FilterPlugin = {
  name: 'migFit',
  prepare({ demand, request }) {
    if (demand.count === 0 || !demand.mig) return null;
    const s = request.slice;
    return {
      gpu(node, i) {
        const g = node.spec.gpus[i];
        const bytes = s.migProfile === null && g ? demand.memoryOn(g) : null;
        if (chooseMigInstance(node, i, s.migProfile, bytes) !== null) return null;
        return { kind: 'noMigProfileFits', gpu: i, profile: s.migProfile, requestedBytes: bytes };
      },
    };
  },
};
