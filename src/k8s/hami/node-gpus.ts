/**
 * The node inventory annotation (`gpushare.io/node-gpus` on a Node): the GPUs the node agent
 * found, as the extender schedules them. Versioned JSON, one codec (STYLE.md 4):
 *
 *   {"v":1,"gpus":[{"index":0,"uuid":"GPU-8f1c...","model":"H100-80GB",
 *     "name":"NVIDIA H100 80GB HBM3","memoryMiB":81559,"health":"ok","numaNode":0}]}
 *
 * `memoryMiB` is the memory slices may take (what libgpushare will let them allocate in all),
 * `health` `ok` or `lost`; `numaNode` null when unknown. A node without the annotation has no
 * GPUs for this path; a malformed one is reported and the node counts as having none.
 */
import { z } from 'zod';
import { fail, ok, type Result } from '../../domain/index.js';
import { decodeJsonAnnotation } from './json-annotation.js';
import { GPU_MILLI, type GpuSpec } from '../../scheduler/index.js';

export const NODE_GPUS_VERSION = 1;

const gpuSchema = z.strictObject({
  index: z.int().min(0).max(1023),
  uuid: z.string().regex(/^GPU-[A-Za-z0-9-]+$/, 'expected a GPU UUID like GPU-8f1c...'),
  model: z.string().min(1).max(128),
  name: z.string().min(1).max(256),
  memoryMiB: z.int().min(1).max(2 ** 30),
  health: z.enum(['ok', 'lost']),
  numaNode: z.int().min(0).max(1023).nullable(),
});
const inventorySchema = z.strictObject({ v: z.literal(NODE_GPUS_VERSION), gpus: z.array(gpuSchema).max(256) });

export type NodeGpu = z.infer<typeof gpuSchema>;

/** The annotation's value for `gpus` (the node agent's side). */
export function encodeNodeGpus(gpus: readonly NodeGpu[]): string {
  return JSON.stringify({ v: NODE_GPUS_VERSION, gpus });
}

/** The GPUs of an annotation value, indexed as listed; an error says what is wrong. */
export function decodeNodeGpus(text: string): Result<NodeGpu[]> {
  const r = decodeJsonAnnotation(text, inventorySchema, 'gpushare.io/node-gpus', '{"v":1,"gpus":[{index,uuid,model,name,memoryMiB,health,numaNode}]}');
  if (!r.ok) return r;
  const seen = new Set<string>();
  for (const [pos, g] of r.value.gpus.entries()) {
    if (g.index !== pos) return fail('gpushare.io/node-gpus', 'malformed', `gpus[${pos}] has index ${g.index}; GPUs are listed in index order from 0`);
    if (seen.has(g.uuid.toLowerCase())) return fail('gpushare.io/node-gpus', 'conflict', `lists ${g.uuid} twice`);
    seen.add(g.uuid.toLowerCase());
  }
  return ok(r.value.gpus);
}

/** The scheduler's view of one GPU (time-sliced HAMi slices: no MIG layout, no SM partitions). */
export function gpuSpecOf(g: NodeGpu): GpuSpec {
  return {
    index: g.index,
    uuid: g.uuid,
    model: g.model,
    name: g.name,
    memoryBytes: g.memoryMiB * 2 ** 20,
    computeMilli: GPU_MILLI,
    numaNode: g.numaNode,
    health: g.health,
    links: [],
    mig: null,
    sm: { ok: false, cause: 'smCountUnknown' },
  };
}
