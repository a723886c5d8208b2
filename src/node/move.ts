/**
 * Moving a swapped-out task to other GPUs of the same model (issue 22 item 5; SWAP.md "Moving
 * a slice"). Slice swap moves the memory, but a process's contexts, modules and streams live on
 * the GPU they were made on, and only the driver can move those: its checkpoint API restores
 * a process onto other GPUs of the same chip type (CUDA 12.8+/driver 580: the restore's GPU
 * pairs, old UUID to new). So a move is, with the task's memory already swapped out by the
 * library (the big part, at PCIe speed):
 *
 *   1. checkpoint the rest (lock, checkpoint: contexts, modules, the small resident allocations;
 *      the swapped allocations are reserved address ranges with nothing mapped),
 *   2. restore it with the GPU pairs and unlock: each device ordinal of the process now names
 *      its new GPU (CUDA_VISIBLE_DEVICES keeps naming the old UUIDs; the ordinals keep their
 *      meaning, as after any remapped restore),
 *   3. swap in: the library creates the physical memory on its allocations' ordinals, that is
 *      on the new GPUs, maps it at the same addresses and copies the bytes back.
 *
 * Any step that fails puts the task back where it was, swapped out on its old GPUs and stopped,
 * or says that it could not (the task then stays suspended where the driver left it).
 */
import type { CheckpointApi, GpuPair } from '../gpu/checkpoint.js';
import { faultPoint } from './faults.js';
import { signalGroup } from './proc.js';
import { resumeGroup, suspendGroup } from './suspend.js';
import type { SwapResult, SwapSessions } from './swap.js';

const SIGSTOP = 19;
const SIGCONT = 18;

/** How long each step took, for the task's events and `inspect`. */
export interface MoveTimings {
  /** Lock and checkpoint of what stays after the swap-out (contexts, the resident rest). */
  readonly checkpointSeconds: number;
  /** Restore onto the new GPUs and unlock. */
  readonly restoreSeconds: number;
  /** The swap-in onto the new GPUs, as the daemon timed it. */
  readonly swapInSeconds: number;
}

export type MoveResult =
  | { readonly ok: true; readonly swap: Extract<SwapResult, { ok: true }>['value']; readonly timings: MoveTimings }
  | { readonly ok: false; readonly step: 'checkpoint' | 'restore' | 'swap-in'; readonly message: string; readonly restored: boolean };

const since = (t: number): number => Math.round((performance.now() - t) / 1000 * 1000) / 1000;

/** Moves the swapped-out task `taskId` (process group `pgid`) by `pairs`; see the top of this file. */
export async function moveSwapped(api: CheckpointApi, swaps: SwapSessions, taskId: string, pgid: number, pairs: readonly GpuPair[], lockTimeoutMs: number): Promise<MoveResult> {
  // The checkpoint work runs in the target's driver thread: the group runs again (its program
  // stays held by the library's swap until the swap-in), then suspendGroup stops it.
  signalGroup(pgid, SIGCONT);
  let t = performance.now();
  const ckpt = await suspendGroup(api, pgid, lockTimeoutMs);
  if (!ckpt.ok) {
    signalGroup(pgid, SIGSTOP);
    return { ok: false, step: 'checkpoint', message: ckpt.error.message, restored: true };
  }
  const checkpointSeconds = since(t);
  faultPoint('move.after-checkpoint');
  t = performance.now();
  const moved = await resumeGroup(api, pgid, pairs);
  if (!moved.ok) {
    // resumeGroup left it checkpointed and stopped: back onto its own GPUs, still swapped out.
    const back = await resumeGroup(api, pgid, []);
    signalGroup(pgid, SIGSTOP);
    return { ok: false, step: 'restore', message: moved.error.message, restored: back.ok };
  }
  const restoreSeconds = since(t);
  faultPoint('move.after-restore');
  t = performance.now();
  const swapped = await swaps.in(taskId, pgid);
  if (!swapped.ok) {
    // Its contexts are on the new GPUs, its memory on the host: the way back is the same move reversed.
    signalGroup(pgid, SIGCONT);
    const reverse = pairs.map((p) => ({ from: p.to, to: p.from }));
    const again = await suspendGroup(api, pgid, lockTimeoutMs);
    const back = again.ok ? await resumeGroup(api, pgid, reverse) : again;
    signalGroup(pgid, SIGSTOP);
    return { ok: false, step: 'swap-in', message: swapped.message, restored: back.ok };
  }
  return { ok: true, swap: swapped.value, timings: { checkpointSeconds, restoreSeconds, swapInSeconds: since(t) } };
}
