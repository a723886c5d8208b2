/**
 * The scheduler's structured refusals turned into the task's wait reason (contract/task.ts
 * WaitReason): per GPU, which filter refused it; or which quota. Pure. Words are made here only
 * for the `text` fields and the task messages people read; nothing parses them back.
 */
import { formatBytes } from '../domain/index.js';
import { describeDecision, describeGpuReason, isPartitionReason, type ClusterSnapshot, type Decision, type GpuReason } from '../scheduler/index.js';
import type { GpuRefusal, PreemptionOutcome, WaitReason } from '../contract/task.js';

/** The GPUs a refused decision names, each with the filter that refused it. */
export function gpuRefusals(d: Decision): GpuRefusal[] {
  return gpuReasons(d).map(toRefusal);
}

function toRefusal(r: GpuReason): GpuRefusal {
  return { gpu: r.gpu, reason: r.kind, text: describeGpuReason(r) };
}

const PREEMPTION_WORDS: Record<PreemptionOutcome, string> = {
  off: 'preemption is off',
  noVictims: 'no lower-priority tasks whose removal would make room',
  needsKill: 'making room would kill tasks that cannot be suspended, which preemption policy "suspend" never does',
  otherUnderWay: 'another preemption is under way',
  notAsked: '',
};

/** The scheduler found no room for it: per GPU why, and what became of preemption. */
export function noRoom(d: Decision, preemption: PreemptionOutcome): WaitReason {
  const why = PREEMPTION_WORDS[preemption];
  return { kind: 'noRoom', gpus: gpuRefusals(d), preemption, text: why === '' ? describeDecision(d) : `${describeDecision(d)}\n(${why})` };
}

/**
 * The quota that refused it, from the decision itself: a GPU-count or compute quota refuses at
 * admission (`unresolvable/quotaExceeded`), a memory quota per GPU (`quotaMemory`). Null when
 * no quota is named.
 */
export function quotaRefusal(d: Decision, tenant: string): Extract<WaitReason, { kind: 'quota' }> | null {
  if (d.status === 'unresolvable' && d.reason.kind === 'quotaExceeded') {
    const r = d.reason;
    return { kind: 'quota', tenant: r.tenant, resource: r.resource, requested: r.requested, remaining: r.limit - r.used, text: describeQuotaRefusal(d) };
  }
  for (const g of gpuReasons(d)) {
    if (g.kind === 'quotaMemory') return { kind: 'quota', tenant, resource: 'memoryBytes', requested: g.requestedBytes, remaining: g.remainingBytes, text: describeQuotaRefusal(d) };
  }
  return null;
}

/**
 * Whether the decision says that only quotas refused it: enough GPUs passed every filter but
 * the tenant's memory quota (`quotaMemory`). Filters run in order and a GPU reports the first
 * that refused it; only the SM-partition filter runs after the quota, and a time-sliced request
 * passes it on a GPU that holds no partition, so such a GPU passed everything else. `unknown`
 * where the decision cannot say: a GPU-count or compute quota refuses at admission, before any
 * GPU is looked at; and an sm-partition request's partition check is not known for a GPU the
 * quota refused.
 */
export function heldOnlyByQuota(d: Decision, snapshot: ClusterSnapshot, partition: boolean): boolean | 'unknown' {
  if (d.status === 'unresolvable') return d.reason.kind === 'quotaExceeded' ? 'unknown' : false;
  if (d.status !== 'unschedulable') return false;
  for (const r of d.rejections) {
    if (r.reason.kind !== 'tooFewGpus') continue;
    const quota = r.reason.gpus.filter((g) => g.kind === 'quotaMemory');
    if (quota.length === 0 || r.reason.eligible + quota.length < r.reason.requested) continue;
    if (partition) return 'unknown';
    const node = snapshot.nodes[snapshot.nodeByName.get(r.node) ?? -1];
    const passes = quota.filter((g) => (node?.gpuPartitions[g.gpu] ?? 1) === 0).length;
    if (r.reason.eligible + passes >= r.reason.requested) return true;
  }
  return false;
}

/**
 * Why a task waits for SMs rather than for room, or null: enough GPUs had room for it but for
 * SM partitions (the scheduler's partition filter runs last, so a GPU it refused passed every
 * other check).
 */
export function smPartitionWait(d: Decision, gpus: number): Extract<WaitReason, { kind: 'smPartition' }> | null {
  if (d.status !== 'unschedulable') return null;
  const r = d.rejections[0]?.reason;
  if (r?.kind !== 'tooFewGpus') return null;
  const partition = r.gpus.filter(isPartitionReason);
  if (partition.length === 0 || r.eligible + partition.length < gpus) return null;
  return { kind: 'smPartition', gpus: partition.map(toRefusal), text: partition.map(describeGpuReason).join('; ') };
}

/** The per-GPU reasons of a decision that found no room (none for any other). */
export function gpuReasons(d: Decision): GpuReason[] {
  if (d.status !== 'unschedulable') return [];
  return d.rejections.flatMap((r) => (r.reason.kind === 'tooFewGpus' ? r.reason.gpus : []));
}

/** A quota refusal in one line: the quota's own reason, not the whole scheduler explanation. */
export function describeQuotaRefusal(d: Decision): string {
  if (d.status === 'unresolvable' && d.reason.kind === 'quotaExceeded') {
    const r = d.reason;
    const fmt = (v: number): string => (r.resource === 'memoryBytes' ? formatBytes(v) : r.resource === 'computeMilli' ? `${v / 10}%` : String(v));
    const what = r.resource === 'computeMilli' ? 'compute' : r.resource === 'memoryBytes' ? 'memory' : 'GPU';
    return `its ${what} quota is ${fmt(r.limit)}; ${fmt(r.used)} in use + ${fmt(r.requested)} asked`;
  }
  const q = gpuReasons(d).find((g) => g.kind === 'quotaMemory');
  if (q?.kind === 'quotaMemory') return `asks ${formatBytes(q.requestedBytes)} of GPU memory; ${formatBytes(q.remainingBytes)} of its memory quota is left`;
  return describeDecision(d);
}
