/**
 * The Alibaba GPU-sharing trace (shared/traces/alibaba-gpu-v2023) decoded into scheduler types.
 * Text in, snapshots and requests out: reading the files is the caller's job.
 *
 * How a trace pod maps to a slice request: `gpu_milli` thousandths of a GPU become a compute
 * share of `gpu_milli / 1000` and the same share of the GPU's memory, so the two dimensions
 * move together and `gpu_milli` alone decides what fits, as in the paper's simulator. Pods of
 * 1000 milli take whole GPUs (no memory or compute limit, i.e. the GPU alone).
 */
import { PRIORITY_LEVELS, smSupport, type IsolationMode, type SliceRequest, type SmSupport } from '../../domain/index.js';
import type { GpuSpec, NodeSpec, PlacementRequest } from '../types.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

/**
 * Board memory of the trace's models. The trace records none; these are the public board
 * sizes (G2/G3 are anonymised, taken as 16/32 GiB). Only ratios matter to the replay, since
 * requests ask for shares of memory.
 */
const MODEL_MEMORY: Readonly<Record<string, number>> = {
  P100: 16 * GIB,
  T4: 16 * GIB,
  V100M16: 16 * GIB,
  V100M32: 32 * GIB,
  A10: 24 * GIB,
  G2: 16 * GIB,
  G3: 32 * GIB,
};

/**
 * Compute capability of the trace's models (public data sheets; G2/G3 are anonymised: unknown),
 * and of the Hopper boards a trace of one's own may name. SM partitions need 9.0 or newer; the
 * domain's table gives Hopper SM counts by name.
 */
const MODEL_COMPUTE_CAPABILITY: Readonly<Record<string, string>> = {
  P100: '6.0',
  T4: '7.5',
  V100M16: '7.0',
  V100M32: '7.0',
  A10: '8.6',
  A100: '8.0',
  H100: '9.0',
  H200: '9.0',
  H800: '9.0',
  H20: '9.0',
  GH200: '9.0',
  B200: '10.0',
};

/** How a trace model splits into SM partitions (or why it cannot): Hopper models by the domain's default layout. */
export function modelSmSupport(model: string): SmSupport {
  const cc = MODEL_COMPUTE_CAPABILITY[model] ?? MODEL_COMPUTE_CAPABILITY[model.replace(/[-_ ].*$/, '')] ?? null;
  return smSupport({ name: model, computeCapability: cc, multiprocessorCount: null });
}

/** One pod row, as the trace has it. */
export interface TracePod {
  readonly name: string;
  readonly cpuMilli: number;
  readonly memoryMib: number;
  readonly numGpu: number;
  readonly gpuMilli: number;
  /** `|`-separated allowed models, or empty. */
  readonly gpuSpec: string;
  /** The optional `isolation` column (not in the Alibaba trace): `time-slice` or `sm-partition`; null when absent or empty. */
  readonly isolation: PodIsolation | null;
}

/** Isolation modes a pod row may ask for (MIG and exclusive need more than the trace says). */
export const POD_ISOLATIONS = ['time-slice', 'sm-partition'] as const;
export type PodIsolation = (typeof POD_ISOLATIONS)[number] & IsolationMode;

export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';
}

/** Splits CSV text into header-keyed rows (the trace has no quoted fields). */
function rows(text: string, what: string, required: readonly string[]): { line: number; get: (col: string) => string }[] {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  const header = (lines[0] ?? '').split(',').map((h) => h.trim());
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) throw new TraceFormatError(`${what}: missing column(s) ${missing.join(', ')} (header: ${header.join(',')})`);
  const index = new Map(header.map((h, i) => [h, i]));
  return lines.slice(1).map((l, k) => {
    const cells = l.split(',');
    return { line: k + 2, get: (col: string) => (cells[index.get(col) ?? -1] ?? '').trim() };
  });
}

function int(value: string, what: string, line: number, col: string): number {
  const n = Number(value);
  if (value === '' || !Number.isInteger(n) || n < 0) throw new TraceFormatError(`${what} line ${line}: ${col} "${value}" is not a whole number >= 0`);
  return n;
}

/** Parses a node list (`sn,cpu_milli,memory_mib,gpu,model`). */
export function parseNodeList(text: string, what = 'node list'): NodeSpec[] {
  return rows(text, what, ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model']).map(({ line, get }) => {
    const name = get('sn');
    const model = get('model');
    const count = int(get('gpu'), what, line, 'gpu');
    const memory = MODEL_MEMORY[model] ?? 16 * GIB;
    const sm = modelSmSupport(model);
    const gpus: GpuSpec[] = Array.from({ length: count }, (_, i) => ({
      index: i,
      uuid: `${name}-gpu-${i}`,
      model,
      name: model,
      memoryBytes: memory,
      computeMilli: 1000,
      numaNode: null,
      health: 'ok',
      links: [],
      mig: null,
      sm,
    }));
    return { name, cpuMilli: int(get('cpu_milli'), what, line, 'cpu_milli'), memoryBytes: int(get('memory_mib'), what, line, 'memory_mib') * MIB, gpus };
  });
}

/** Parses a pod list (the five resource columns; `gpu_spec` and `isolation` optional). */
export function parsePodList(text: string, what = 'pod list'): TracePod[] {
  return rows(text, what, ['name', 'cpu_milli', 'memory_mib', 'num_gpu', 'gpu_milli']).map(({ line, get }) => {
    const numGpu = int(get('num_gpu'), what, line, 'num_gpu');
    const gpuMilli = int(get('gpu_milli'), what, line, 'gpu_milli');
    if (gpuMilli > 1000) throw new TraceFormatError(`${what} line ${line}: gpu_milli ${gpuMilli} is over 1000`);
    if (gpuMilli > 0 && gpuMilli < 1000 && numGpu !== 1) throw new TraceFormatError(`${what} line ${line}: a fractional pod (gpu_milli ${gpuMilli}) must ask for 1 GPU, not ${numGpu}`);
    const isolation = get('isolation');
    if (isolation !== '' && !(POD_ISOLATIONS as readonly string[]).includes(isolation)) {
      throw new TraceFormatError(`${what} line ${line}: isolation "${isolation}" is not one of ${POD_ISOLATIONS.join(', ')} (or empty)`);
    }
    return {
      name: get('name'),
      cpuMilli: int(get('cpu_milli'), what, line, 'cpu_milli'),
      memoryMib: int(get('memory_mib'), what, line, 'memory_mib'),
      numGpu: gpuMilli === 0 ? 0 : numGpu,
      gpuMilli,
      gpuSpec: get('gpu_spec'),
      isolation: isolation === '' ? null : (isolation as PodIsolation),
    };
  });
}

const NO_SELECTOR = { include: [], exclude: [] } as const;

/**
 * The slice request a trace pod stands for. `sharing`: the isolation of GPU-sharing pods
 * (gpu_milli under 1000) whose row names none (simulate --isolation). A pod asking for an SM
 * partition gets its share as the partition's compute (100% for a whole-GPU pod whose row asks
 * for sm-partition: the whole GPU's SMs).
 */
export function podRequest(pod: TracePod, id: string, sharing: PodIsolation = 'time-slice'): PlacementRequest {
  const share = pod.gpuMilli / 1000;
  const isolation: PodIsolation = pod.numGpu === 0 ? 'time-slice' : (pod.isolation ?? (pod.gpuMilli < 1000 ? sharing : 'time-slice'));
  const whole = pod.gpuMilli >= 1000 && isolation !== 'sm-partition';
  const slice: SliceRequest = {
    gpus: pod.numGpu,
    memory: pod.numGpu === 0 || whole ? null : { kind: 'fraction', fraction: share },
    compute: pod.numGpu === 0 || whole ? null : share,
    priority: PRIORITY_LEVELS.normal,
    isolation,
    migProfile: null,
    models: pod.gpuSpec === '' ? NO_SELECTOR : { include: pod.gpuSpec.split('|').filter((s) => s !== ''), exclude: [] },
    uuids: NO_SELECTOR,
    numaNode: null,
  };
  return { id, slice, cpuMilli: pod.cpuMilli, memoryBytes: pod.memoryMib * MIB, tenant: null, gang: null, suspendable: false, policy: null };
}

/** GPU milli a pod asks for in all. */
export function podGpuMilli(pod: TracePod): number {
  return pod.numGpu * pod.gpuMilli;
}
