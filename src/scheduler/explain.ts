/**
 * Sentences for people, made from structured reasons at the last moment (CLI, dashboard, API
 * error messages). Nothing parses these back.
 */
import { describeSmUnsupported, formatBytes } from '../domain/index.js';
import type { AdmissionReason, Decision, GpuReason, NodeReason } from './types.js';

export function describeGpuReason(r: GpuReason): string {
  switch (r.kind) {
    case 'gpuUnhealthy':
      return `GPU ${r.gpu} is unhealthy`;
    case 'gpuCordoned':
      return `GPU ${r.gpu} cordoned by ${r.by}${r.note === null ? '' : `: ${r.note}`}`;
    case 'gpuFault':
      return `GPU ${r.gpu} unhealthy: ${r.fault === 'xid' ? 'XID' : 'uncorrectable ECC errors'}${r.code === null ? '' : ` ${r.code}`}`;
    case 'modelNotSelected':
      return `GPU ${r.gpu} is a ${r.model}, not a selected model`;
    case 'uuidNotSelected':
      return `GPU ${r.gpu} (${r.uuid}) is not a selected UUID`;
    case 'numaMismatch':
      return `GPU ${r.gpu} is on NUMA node ${r.numaNode ?? 'unknown'}, not ${r.requested}`;
    case 'insufficientGpuMemory':
      return `GPU ${r.gpu} has ${formatBytes(r.freeBytes)} free, ${formatBytes(r.requestedBytes)} asked`;
    case 'insufficientCompute':
      return `GPU ${r.gpu} has ${r.freeMilli / 10}% compute free, ${r.requestedMilli / 10}% asked`;
    case 'heldExclusively':
      return `GPU ${r.gpu} is held exclusively`;
    case 'notIdleForExclusive':
      return `GPU ${r.gpu} runs ${r.slices} slice(s); exclusive use needs an idle GPU`;
    case 'migMismatch':
      return r.migEnabled ? `GPU ${r.gpu} is in MIG mode` : `GPU ${r.gpu} is not in MIG mode`;
    case 'noMigProfileFits':
      return `GPU ${r.gpu} has no free MIG instance ${r.profile ?? (r.requestedBytes === null ? '' : `of ${formatBytes(r.requestedBytes)} or more`)}`.trimEnd();
    case 'quotaMemory':
      return `GPU ${r.gpu}: ${formatBytes(r.requestedBytes)} would exceed the tenant's remaining memory quota (${formatBytes(r.remainingBytes)})`;
    case 'notPartitionable':
      return `GPU ${r.gpu} cannot be SM-partitioned: ${describeSmUnsupported(r.name, r)}`;
    case 'partitionTooLarge':
      return `GPU ${r.gpu}: ${describePartitionTooLarge(r)}`;
    case 'noFreeSmRun':
      return `GPU ${r.gpu}: no ${r.wantSms} SMs in a row are free (${r.freeSms} of the ${r.groupableSms} SMs its driver can partition are free); the longest free run is ${r.largestFreeRun}`;
    case 'smRangeTaken':
      return `GPU ${r.gpu}: SMs ${r.offset}-${r.offset + r.count - 1}, where its partition was, are taken`;
    case 'isolationMix':
      return r.holding === 'sm-partition'
        ? `GPU ${r.gpu} runs SM partitions; time-sliced work would slow them`
        : `GPU ${r.gpu} runs time-sliced work, and SM partitions do not share a GPU with it`;
  }
}

/** What is too large and what would fit, without the GPU (the daemon's admission says it of the request's compute). */
export function describePartitionTooLarge(r: Extract<GpuReason, { kind: 'partitionTooLarge' }>): string {
  return `${r.percent}% is ${r.wantSms} SMs, but the driver groups only ${r.groupableSms} of the GPU's ${r.totalSms} SMs into partitions: ask for at most ${r.largestPercent}%, or 100% for the whole GPU`;
}

/** GPU reasons that are about SM partitions (plugins/partition.ts): the GPU has room, but not for this kind of work or not these SMs. */
export function isPartitionReason(r: GpuReason): boolean {
  return r.kind === 'noFreeSmRun' || r.kind === 'smRangeTaken' || r.kind === 'isolationMix' || r.kind === 'partitionTooLarge' || r.kind === 'notPartitionable';
}

export function describeNodeReason(r: NodeReason): string {
  switch (r.kind) {
    case 'insufficientCpu':
      return `${r.freeMilli / 1000} CPU free, ${r.requestedMilli / 1000} asked`;
    case 'insufficientMemory':
      return `${formatBytes(r.freeBytes)} memory free, ${formatBytes(r.requestedBytes)} asked`;
    case 'tooFewGpus': {
      const why = r.gpus.map(describeGpuReason).join('; ');
      return `${r.eligible} of the ${r.requested} GPU(s) asked can take it${why ? `: ${why}` : ''}`;
    }
  }
}

function describeAdmission(r: AdmissionReason): string {
  switch (r.kind) {
    case 'quotaExceeded':
      return `tenant ${r.tenant} would exceed its ${r.resource} quota (${r.used} used + ${r.requested} asked > ${r.limit})`;
    case 'unknownPolicy':
      return `unknown policy "${r.policy}"`;
    case 'noNodes':
      return 'the cluster has no nodes';
  }
}

/** One paragraph: where it went, or why it went nowhere (first `maxNodes` nodes listed). */
export function describeDecision(d: Decision, maxNodes = 10): string {
  if (d.status === 'ok') return `placed on ${d.placement.node}, GPU(s) ${d.placement.gpus.map((g) => g.gpu).join(', ') || 'none'}`;
  if (d.status === 'unresolvable') return `cannot be placed: ${describeAdmission(d.reason)}`;
  const lines = d.rejections.slice(0, maxNodes).map((r) => `  ${r.node}: ${describeNodeReason(r.reason)}`);
  const more = d.rejections.length > maxNodes ? [`  ... and ${d.rejections.length - maxNodes} more node(s)`] : [];
  return ['no node can take it:', ...lines, ...more].join('\n');
}
