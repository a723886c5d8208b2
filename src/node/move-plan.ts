/**
 * Where a task moves (issue 22 item 5, `gpushare move`): the GPUs asked for, checked and placed
 * by the scheduler engine. Pure. A move keeps the task's GPU count and puts each of its GPUs'
 * slice onto the GPU named at the same position, which must be of the same model (the driver's
 * restore remaps a GPU only onto one of its own chip type) and have room for the slice as the
 * engine counts it (memory, compute, exclusivity, quotas, SM partitions at their own offsets).
 * A refusal says which check refused, with the engine's own per-GPU reasons for no room.
 */
import type { GpuRefusal, Task, TaskGpu } from '../contract/task.js';
import { describeDecision, schedule, withoutPlacements, type ClusterSnapshot, type NodeSpec, type Policy, type Prng } from '../scheduler/index.js';
import { placementRequest, taskGpus } from './placement.js';
import { gpuRefusals } from './reasons.js';

/** Why a move is refused (stable codes; `text` for people). */
export type MoveRefusal =
  | { readonly code: 'gpu-count'; readonly text: string }
  | { readonly code: 'unknown-gpu'; readonly text: string }
  | { readonly code: 'same-gpu'; readonly text: string }
  | { readonly code: 'model'; readonly text: string }
  | { readonly code: 'no-room'; readonly text: string; readonly gpus: readonly GpuRefusal[] };

export type MovePlan = { readonly ok: true; readonly gpus: readonly TaskGpu[] } | { readonly ok: false; readonly refusal: MoveRefusal };

export interface MoveContext {
  readonly node: NodeSpec;
  readonly policy: Policy;
  readonly rng: Prng;
}

/**
 * The task's new GPUs, one per GPU it has (by index on this machine), or why not. `snapshot`:
 * the machine with the tasks that hold GPUs now; the task's own placement, if there, is left
 * out (it leaves its GPUs as it moves).
 */
export function planMove(ctx: MoveContext, snapshot: ClusterSnapshot, task: Task, targets: readonly number[]): MovePlan {
  const old = task.gpus ?? [];
  const refuse = (refusal: MoveRefusal): MovePlan => ({ ok: false, refusal });
  if (old.length === 0) return refuse({ code: 'gpu-count', text: `task ${task.id} holds no GPU to move from` });
  if (targets.length !== old.length) return refuse({ code: 'gpu-count', text: `task ${task.id} has ${old.length} GPU(s); name as many targets (got ${targets.length})` });
  if (new Set(targets).size !== targets.length) return refuse({ code: 'gpu-count', text: `the targets name a GPU more than once (${targets.join(', ')})` });
  const specs = [];
  for (const [i, index] of targets.entries()) {
    const spec = ctx.node.gpus.find((g) => g.index === index);
    if (!spec) return refuse({ code: 'unknown-gpu', text: `this machine has no GPU ${index} (it has ${ctx.node.gpus.map((g) => g.index).join(', ')})` });
    const from = ctx.node.gpus.find((g) => g.uuid === old[i]?.uuid);
    if (from && from.model !== spec.model) return refuse({ code: 'model', text: `GPU ${index} is a ${spec.model}, task ${task.id}'s GPU ${from.index} a ${from.model}: a slice moves only to a GPU of the same model` });
    specs.push(spec);
  }
  if (specs.every((s, i) => s.uuid === old[i]?.uuid)) return refuse({ code: 'same-gpu', text: `task ${task.id} is on GPU ${targets.join(', ')} already` });
  const request = placementRequest({ ...task, request: { ...task.request, uuids: { include: specs.map((s) => s.uuid), exclude: [] }, models: { include: [], exclude: [] } } }, task.smRanges);
  const decision = schedule(withoutPlacements(snapshot, new Set([task.id])), request, { policy: ctx.policy, rng: ctx.rng });
  if (decision.status !== 'ok') return refuse({ code: 'no-room', text: `no room for the slice on GPU ${targets.join(', ')}: ${describeDecision(decision)}`, gpus: gpuRefusals(decision) });
  const placed = taskGpus(decision.placement, ctx.node);
  // In the order asked: the i-th old GPU goes to the i-th target (the driver's GPU pairs).
  return { ok: true, gpus: specs.map((s) => placed.find((g) => g.uuid === s.uuid) as TaskGpu) };
}
