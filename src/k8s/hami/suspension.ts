/**
 * The two annotations of preemption that suspends, one codec (STYLE.md 4):
 *
 * - `gpushare.io/suspend-request`, written by the extender on a victim it chose to suspend:
 *     {"v":1,"preemptor":"<pod uid>","node":"gpu-node-7","atMs":1796000000000}
 * - `gpushare.io/suspended`, the node agent's answer on the same pod:
 *     {"v":1,"state":"suspended","preemptor":"<pod uid>","atMs":1796000000100}
 *     {"v":1,"state":"failed","preemptor":"<pod uid>","atMs":...,"reason":"no CUDA process ..."}
 *
 * A pod whose `suspended` says `suspended` holds no room on its GPUs (its memory is in host
 * memory, its processes stopped) until the agent resumes it and removes the annotation.
 */
import { z } from 'zod';
import type { Result } from '../../domain/index.js';
import { decodeJsonAnnotation } from './json-annotation.js';
import { GPUSHARE_ANNOTATION } from './names.js';

export const SUSPENSION_VERSION = 1;

const requestSchema = z.strictObject({
  v: z.literal(SUSPENSION_VERSION),
  preemptor: z.string().min(1).max(128),
  node: z.string().min(1).max(253),
  atMs: z.int().min(0),
});
const suspendedSchema = z.strictObject({
  v: z.literal(SUSPENSION_VERSION),
  state: z.enum(['suspended', 'failed']),
  preemptor: z.string().max(128),
  atMs: z.int().min(0),
  reason: z.string().max(1024).optional(),
});

export type SuspendRequest = z.infer<typeof requestSchema>;
export type Suspension = z.infer<typeof suspendedSchema>;

export function encodeSuspendRequest(r: SuspendRequest): string {
  return JSON.stringify(r);
}

export function decodeSuspendRequest(text: string): Result<SuspendRequest> {
  return decodeJsonAnnotation(text, requestSchema, GPUSHARE_ANNOTATION.suspendRequest, '{"v":1,"preemptor":...,"node":...,"atMs":...}');
}

export function encodeSuspension(s: Suspension): string {
  return JSON.stringify(s);
}

export function decodeSuspension(text: string): Result<Suspension> {
  return decodeJsonAnnotation(text, suspendedSchema, GPUSHARE_ANNOTATION.suspended, '{"v":1,"state":"suspended"|"failed","preemptor":...,"atMs":...}');
}

/** Whether a pod's annotations say its slices are suspended (hold no room on their GPUs). */
export function isSuspended(annotations: Readonly<Record<string, string>> | undefined): boolean {
  const text = annotations?.[GPUSHARE_ANNOTATION.suspended];
  if (text === undefined) return false;
  const r = decodeSuspension(text);
  return r.ok && r.value.state === 'suspended';
}
