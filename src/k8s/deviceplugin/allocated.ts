/**
 * `gpushare.io/allocated` on a Pod: which of its containers the device plugin's Allocate has
 * served, so a decision is consumed once. The node's ledger is the first record; this one
 * survives the loss of the node's state (a reinstalled agent, a reboot) and tells the cluster
 * what the node did. Versioned JSON, one codec:
 *
 *   {"v":1,"node":"gpu-node-7","containers":[{"index":0,"name":"train","gpus":["GPU-8f1c..."],
 *     "deviceIds":["GPU-8f1c...::3"],"atMs":1796000000000}]}
 */
import { z } from 'zod';
import { ok, type Result } from '../../domain/result.js';
import { decodeJsonAnnotation } from '../hami/json-annotation.js';
import { GPUSHARE_ANNOTATION } from '../hami/names.js';

export const ALLOCATED_VERSION = 1;

const containerSchema = z.strictObject({
  index: z.int().min(0),
  name: z.string().max(253),
  gpus: z.array(z.string().min(1).max(128)).min(1).max(64),
  deviceIds: z.array(z.string().min(1).max(256)).max(64),
  atMs: z.int().min(0),
});
const allocatedSchema = z.strictObject({
  v: z.literal(ALLOCATED_VERSION),
  node: z.string().min(1).max(253),
  containers: z.array(containerSchema).max(256),
});

export type PodAllocated = z.infer<typeof allocatedSchema>;
export type ContainerAllocated = z.infer<typeof containerSchema>;

export function encodeAllocated(a: PodAllocated): string {
  return JSON.stringify(a);
}

export function decodeAllocated(text: string): Result<PodAllocated> {
  return decodeJsonAnnotation(text, allocatedSchema, GPUSHARE_ANNOTATION.allocated, '{"v":1,"node":...,"containers":[{"index":0,...}]}');
}

/** `current` with `added` recorded (a container already there keeps its first record): the patch's new value. */
export function withContainers(current: PodAllocated | null, node: string, added: readonly ContainerAllocated[]): PodAllocated {
  const containers = [...(current?.containers ?? [])];
  for (const c of added) if (!containers.some((x) => x.index === c.index)) containers.push(c);
  containers.sort((a, b) => a.index - b.index);
  return { v: ALLOCATED_VERSION, node, containers };
}

/** The container indexes a pod's annotation records as served; a malformed annotation records none (the ledger still does). */
export function allocatedIndexes(annotations: Readonly<Record<string, string>> | undefined): Result<ReadonlySet<number>> {
  const text = annotations?.[GPUSHARE_ANNOTATION.allocated];
  if (text === undefined) return ok(new Set());
  const r = decodeAllocated(text);
  return r.ok ? ok(new Set(r.value.containers.map((c) => c.index))) : r;
}
