/**
 * The extender's decision on a pod (`gpushare.io/decision`): which GPUs each container got and
 * how much of them. Written by bind before the Binding, read by the device plugin's Allocate
 * (which must honour it whatever replica IDs the kubelet picks) and by the extender's cluster
 * view (a bound pod's reservation). Versioned JSON, one codec:
 *
 *   {"v":1,"podUid":"5c0c...","node":"gpu-node-7","decidedAtMs":1796000000000,
 *    "containers":[{"name":"train","index":0,"taskPriority":1,"exclusive":false,
 *      "gpus":[{"uuid":"GPU-8f1c...","index":3,"memoryBytes":10485760000,"coresPercent":30,"computeMilli":300}]}]}
 *
 * `memoryBytes` is the slice's memory on that GPU, both its limit and what the scheduler holds
 * for it (the whole GPU's memory when the pod set none); `coresPercent` is the compute limit
 * libgpushare enforces (0: none, HAMi's default) and `computeMilli` the compute the scheduler
 * holds for it (0 for a memory-only slice, 1000 for a whole or exclusive GPU); `exclusive`: the
 * GPU is the container's alone (`nvidia.com/gpucores: 100`). `podUid` ties the decision to one pod
 * object: a decision copied onto another pod (same name, new uid) is not trusted.
 */
import { z } from 'zod';
import { fail, ok, type Result } from '../../domain/index.js';
import { decodeJsonAnnotation } from './json-annotation.js';

export const DECISION_VERSION = 1;

const gpuSchema = z.strictObject({
  uuid: z.string().min(1).max(128),
  index: z.int().min(0).max(1023),
  memoryBytes: z.int().min(0),
  coresPercent: z.int().min(0).max(100),
  computeMilli: z.int().min(0).max(1000),
});
const containerSchema = z.strictObject({
  name: z.string().max(253),
  index: z.int().min(0),
  taskPriority: z.union([z.literal(0), z.literal(1)]),
  exclusive: z.boolean(),
  gpus: z.array(gpuSchema).min(1).max(64),
});
const decisionSchema = z.strictObject({
  v: z.literal(DECISION_VERSION),
  podUid: z.string().min(1).max(128),
  node: z.string().min(1).max(253),
  decidedAtMs: z.int().min(0),
  containers: z.array(containerSchema).min(1).max(256),
});

export type PodDecision = z.infer<typeof decisionSchema>;
export type ContainerDecision = z.infer<typeof containerSchema>;

export function encodeDecision(d: PodDecision): string {
  return JSON.stringify(d);
}

export function decodeDecision(text: string): Result<PodDecision> {
  const r = decodeJsonAnnotation(text, decisionSchema, 'gpushare.io/decision', '{"v":1,"podUid":...,"node":...,"decidedAtMs":...,"containers":[...]}');
  if (!r.ok) return r;
  const seen = new Set<number>();
  for (const c of r.value.containers) {
    if (seen.has(c.index)) return fail('gpushare.io/decision', 'conflict', `container index ${c.index} appears twice`);
    seen.add(c.index);
  }
  return ok(r.value);
}
