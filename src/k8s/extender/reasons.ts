/**
 * A node's reason in one short line for the kube-scheduler's events: the engine's GPU reasons
 * grouped by kind ("GPUs 0-7: at most 20 GiB free, 40 GiB asked") instead of one clause per GPU.
 * The kube-scheduler folds identical messages into one line of its FailedScheduling event and
 * sends the whole map back and forth on every pod, so a node of 8 GPUs says it once.
 */
import { formatBytes } from '../../domain/index.js';
import { describeGpuReason, describeNodeReason, type GpuReason, type NodeReason } from '../../scheduler/index.js';

export function describeRejection(r: NodeReason): string {
  if (r.kind !== 'tooFewGpus' || r.gpus.length === 0) return describeNodeReason(r);
  const byKind = new Map<GpuReason['kind'], GpuReason[]>();
  for (const g of r.gpus) {
    const list = byKind.get(g.kind);
    if (list) list.push(g);
    else byKind.set(g.kind, [g]);
  }
  const parts: string[] = [];
  for (const list of byKind.values()) parts.push(`${gpuList(list.map((g) => g.gpu))}: ${clause(list)}`);
  return `${r.eligible} of the ${r.requested} GPU(s) asked can take it: ${parts.join('; ')}`;
}

function clause(list: readonly GpuReason[]): string {
  const [first] = list;
  if (first === undefined) return '';
  switch (first.kind) {
    case 'insufficientGpuMemory': {
      const most = Math.max(...list.map((g) => (g.kind === 'insufficientGpuMemory' ? g.freeBytes : 0)));
      return `${list.length > 1 ? 'at most ' : ''}${formatBytes(most)} free, ${formatBytes(first.requestedBytes)} asked`;
    }
    case 'insufficientCompute': {
      const most = Math.max(...list.map((g) => (g.kind === 'insufficientCompute' ? g.freeMilli : 0)));
      return `${list.length > 1 ? 'at most ' : ''}${most / 10}% compute free, ${first.requestedMilli / 10}% asked`;
    }
    case 'uuidNotSelected':
      return list.length === 1 ? `${first.uuid} is not a selected UUID` : 'not selected UUIDs';
    default:
      // The rest read the same for every GPU of the kind: the first one's sentence without "GPU n".
      return describeGpuReason(first).replace(/^GPU \d+:? /, '');
  }
}

/** `GPU 3`, `GPUs 0-7`, `GPUs 0, 2, 5-7`. */
function gpuList(ids: readonly number[]): string {
  const sorted = [...ids].sort((a, b) => a - b);
  const runs: string[] = [];
  for (let i = 0; i < sorted.length; ) {
    let j = i;
    while (j + 1 < sorted.length && (sorted[j + 1] as number) === (sorted[j] as number) + 1) j++;
    runs.push(j > i ? `${sorted[i]}-${sorted[j]}` : `${sorted[i]}`);
    i = j + 1;
  }
  return `${sorted.length === 1 ? 'GPU' : 'GPUs'} ${runs.join(', ')}`;
}
