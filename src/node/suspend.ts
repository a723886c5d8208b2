/**
 * Suspending and resuming a task's whole process group through the CUDA checkpoint API.
 *
 * Suspend: every process of the group that has the CUDA driver mapped and answers the
 * checkpoint API is locked (its queued GPU work drains, further CUDA calls block), then
 * checkpointed (its GPU memory moves to host memory and the GPU memory is freed), then the whole
 * group gets SIGSTOP. Resume: SIGCONT, restore (optionally onto other GPUs of the same chip),
 * unlock.
 *
 * Why SIGSTOP as well: the lock only stops CUDA calls. Everything else a task does keeps going
 * without it: its CPU threads (data loaders, Python's own loop, processes of the group that
 * never use CUDA) would burn CPU, write logs and reach their next CUDA call only to wait there,
 * so a "suspended" task would still compete for the machine. Stopped, it takes nothing but
 * memory. The order matters: the checkpoint work runs inside the target (the driver's restore
 * thread), so a process must not be stopped before checkpoint nor left stopped before restore.
 *
 * Both functions converge from any mix of per-process states (running, locked,
 * checkpointed), so a daemon that crashed halfway through either can finish or undo it on
 * its next start by calling them again.
 */
import type { CheckpointApi, CheckpointError, GpuPair, ProcessCheckpointState } from '../gpu/checkpoint.js';
import { CHECKPOINT_ERROR_CODES } from '../gpu/checkpoint.js';
import { groupMembers, mayUseCudaDriver, signalGroup } from './proc.js';

const SIGSTOP = 19;
const SIGCONT = 18;

export type GroupResult = { readonly ok: true; readonly pids: readonly number[] } | { readonly ok: false; readonly error: CheckpointError };

/** The group's CUDA processes with their checkpoint states; processes with no CUDA state are left out. A process whose maps cannot be read is asked too (failing closed): the driver answers notFound where it has no CUDA. */
export function cudaStates(api: CheckpointApi, pgid: number): { ok: true; states: Map<number, ProcessCheckpointState> } | { ok: false; error: CheckpointError } {
  const states = new Map<number, ProcessCheckpointState>();
  for (const pid of groupMembers(pgid).filter(mayUseCudaDriver)) {
    const s = api.state(pid);
    if (s.ok) states.set(pid, s.value);
    // The driver is mapped but the process never initialised CUDA (or just ended): nothing to move.
    else if (s.error.code !== CHECKPOINT_ERROR_CODES.notFound && s.error.cudaResult !== 3) return { ok: false, error: s.error };
  }
  return { ok: true, states };
}

/**
 * A step refused as out of order, with the process already where the step leads: a daemon that
 * died during that same step left it running in the driver, and it finished before ours was
 * taken up. Only the daemon drives these steps, so the state is the one it asked for.
 */
function reached(api: CheckpointApi, pid: number, error: CheckpointError, want: readonly ProcessCheckpointState[]): boolean {
  if (error.code !== CHECKPOINT_ERROR_CODES.illegalState) return false;
  const s = api.state(pid);
  return s.ok && want.includes(s.value);
}

/** Locks and checkpoints every CUDA process of the group, then stops the group. On failure, undoes what it did and leaves the group running. */
export async function suspendGroup(api: CheckpointApi, pgid: number, lockTimeoutMs: number): Promise<GroupResult> {
  const found = cudaStates(api, pgid);
  if (!found.ok) return found;
  const pids = [...found.states.keys()];
  const fail = async (error: CheckpointError): Promise<GroupResult> => {
    await resumeGroup(api, pgid, []);
    return { ok: false, error };
  };
  for (const [pid, state] of found.states) {
    if (state === 'failed') return fail({ code: CHECKPOINT_ERROR_CODES.illegalState, message: `process ${pid} is in the driver's FAILED checkpoint state`, cudaResult: null, call: 'cuCheckpointProcessGetState' });
    if (state !== 'running') continue;
    const r = await api.lock(pid, lockTimeoutMs);
    if (!r.ok && !reached(api, pid, r.error, ['locked', 'checkpointed'])) return fail(r.error);
  }
  for (const pid of pids) {
    if (found.states.get(pid) === 'checkpointed') continue;
    const r = await api.checkpoint(pid);
    if (!r.ok && !reached(api, pid, r.error, ['checkpointed'])) return fail(r.error);
  }
  signalGroup(pgid, SIGSTOP);
  return { ok: true, pids };
}

/**
 * Continues the group, restores every checkpointed CUDA process (onto `pairs`' new GPUs when
 * given) and unlocks it. On failure, checkpoints again what it restored and stops the group, so
 * the task stays suspended as it was.
 */
export async function resumeGroup(api: CheckpointApi, pgid: number, pairs: readonly GpuPair[]): Promise<GroupResult> {
  signalGroup(pgid, SIGCONT);
  const found = cudaStates(api, pgid);
  if (!found.ok) return found;
  const restored: number[] = [];
  for (const [pid, state] of found.states) {
    if (state !== 'checkpointed') continue;
    const r = await api.restore(pid, pairs);
    if (!r.ok) {
      for (const p of restored) await api.checkpoint(p);
      signalGroup(pgid, SIGSTOP);
      return { ok: false, error: r.error };
    }
    restored.push(pid);
  }
  for (const [pid] of found.states) {
    const s = api.state(pid);
    if (!s.ok || s.value !== 'locked') continue;
    const r = await api.unlock(pid);
    if (!r.ok) return { ok: false, error: r.error };
  }
  return { ok: true, pids: [...found.states.keys()] };
}

/** Continues a stopped group that has no checkpointed processes (nothing to restore). */
export function continueGroup(pgid: number): boolean {
  return signalGroup(pgid, SIGCONT);
}
