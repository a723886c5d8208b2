/**
 * An online estimate of the workload's common request shapes, for fragmentation-aware scoring.
 * It learns only from requests that have arrived (no oracle): counts of each distinct shape,
 * of which the most frequent ones covering `coverage` of arrivals form the model, weighted by
 * frequency (FGD's "typical pods", there taken from the whole trace in advance).
 */
import type { MemoryQuantity } from '../domain/index.js';
import type { PlacementRequest } from './types.js';

/** One request shape: what a typical incoming request needs. */
export interface Shape {
  readonly key: string;
  readonly cpuMilli: number;
  readonly memoryBytes: number;
  /** GPUs wanted; 0 for CPU-only. */
  readonly count: number;
  /** Compute per GPU as a share 0-1 (1 for whole GPUs). */
  readonly computeShare: number;
  /** Memory per GPU; null means the whole GPU. */
  readonly gpuMemory: MemoryQuantity | null;
  /** Model include list (empty: any model). */
  readonly models: readonly string[];
  /** Frequency among the shapes of the model; they sum to 1. */
  readonly weight: number;
}

/**
 * A set of GPU models some arrivals are restricted to (their include list), and the share of
 * all GPU demand (milli-GPU) that such arrivals asked for. Unlike shapes, these are kept
 * however rare each one is: a few percent of demand that can run on one model only is what
 * decides whether that model's GPUs should be left for it (plugins/reserve.ts).
 */
export interface ModelDemand {
  /** Lower-case include list, sorted; matched against a GPU's model or name as shapes are. */
  readonly models: readonly string[];
  /** Share 0-1 of the GPU demand seen so far. */
  readonly share: number;
}

/**
 * A multi-GPU request shape, however rare, and its share 0-1 of the GPU demand (milli-GPU) seen
 * so far. A shape asking for several GPUs of one node can be rare among requests and still a
 * large part of the GPU asked for (on the trace's default list, 8-GPU pods are 0.5% of the pods
 * and 6% of the GPU); plugins/scarcity.ts keeps the nodes that can still take one for it.
 */
export interface WideShape {
  readonly shape: Omit<Shape, 'weight'>;
  readonly share: number;
}

export interface WorkloadModel {
  /** Changes whenever the shapes or weights do, so caches can key on it. */
  readonly version: number;
  readonly shapes: readonly Shape[];
  /** Demand restricted to model lists (none when unknown or every request takes any model). */
  readonly restricted?: readonly ModelDemand[];
  /** Every multi-GPU shape seen, with its share of the GPU demand (none when unknown). */
  readonly wide?: readonly WideShape[];
}

interface Count {
  shape: Omit<Shape, 'weight'>;
  n: number;
}

/** The shape of a request (host memory is kept as first seen: FGD ignores it, so do shape keys). */
export function shapeOf(request: PlacementRequest): Omit<Shape, 'weight'> {
  const s = request.slice;
  const whole = s.isolation === 'exclusive' || (s.memory === null && s.compute === null);
  const computeShare = whole ? 1 : (s.compute ?? 0);
  const gpuMemory = whole ? null : s.memory;
  const models = s.models.include.map((m) => m.toLowerCase()).sort();
  const mem = gpuMemory === null ? 'all' : gpuMemory.kind === 'bytes' ? `${gpuMemory.bytes}b` : `${gpuMemory.fraction}f`;
  const key = `${request.cpuMilli}/${s.gpus}/${computeShare}/${mem}/${models.join('|')}`;
  return { key, cpuMilli: request.cpuMilli, memoryBytes: request.memoryBytes, count: s.gpus, computeShare, gpuMemory, models };
}

/**
 * Accumulates arrivals. Deterministic and free of I/O; the caller owns one per cluster (or per
 * replay) and asks it for a model when scoring.
 */
export class ShapeEstimator {
  private readonly counts = new Map<string, Count>();
  /** GPU demand (milli-GPU) by include list, and in all. */
  private readonly restricted = new Map<string, { models: readonly string[]; milli: number }>();
  private gpuMilli = 0;
  private total = 0;
  private sinceBuild = 0;
  private current: WorkloadModel = { version: 0, shapes: [] };

  /**
   * @param coverage share of arrivals the model's shapes must cover (FGD used 95%)
   * @param growth rebuild the model once arrivals have grown by this share since the last
   *   build: every arrival at first, when each one moves the estimate a lot, then more rarely
   *   (each rebuild makes scorers recompute every node's fragmentation)
   */
  constructor(
    private readonly coverage = 0.95,
    private readonly growth = 0.1,
  ) {}

  observe(request: PlacementRequest): void {
    const shape = shapeOf(request);
    const c = this.counts.get(shape.key);
    if (c) c.n += 1;
    else this.counts.set(shape.key, { shape, n: 1 });
    this.total += 1;
    this.sinceBuild += 1;
    const milli = shape.count * shape.computeShare * 1000;
    this.gpuMilli += milli;
    if (milli > 0 && shape.models.length > 0) {
      const key = shape.models.join('|');
      const r = this.restricted.get(key);
      if (r) r.milli += milli;
      else this.restricted.set(key, { models: shape.models, milli });
    }
  }

  /** The current model (rebuilt lazily; the same object until it changes). */
  model(): WorkloadModel {
    if (this.sinceBuild > 0 && this.sinceBuild >= Math.max(1, Math.floor(this.growth * (this.total - this.sinceBuild)))) this.rebuild();
    return this.current;
  }

  private rebuild(): void {
    const sorted = [...this.counts.values()].sort((a, b) => b.n - a.n || (a.shape.key < b.shape.key ? -1 : 1));
    const chosen: Count[] = [];
    let covered = 0;
    for (const c of sorted) {
      if (covered >= this.coverage * this.total) break;
      chosen.push(c);
      covered += c.n;
    }
    const shapes = chosen.map((c) => ({ ...c.shape, weight: c.n / covered }));
    const restricted = [...this.restricted]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, r]) => ({ models: r.models, share: r.milli / this.gpuMilli }));
    const wide = [...this.counts.values()]
      .filter((c) => c.shape.count >= 2 && this.gpuMilli > 0)
      .sort((a, b) => (a.shape.key < b.shape.key ? -1 : 1))
      .map((c) => ({ shape: c.shape, share: (c.n * c.shape.count * c.shape.computeShare * 1000) / this.gpuMilli }));
    this.current = { version: this.current.version + 1, shapes, restricted, wide };
    this.sinceBuild = 0;
  }
}

/**
 * A fixed model (tests, or a cluster whose workload is known). Its restricted demand is that
 * of the shapes with an include list, by the GPU they ask for at their weights.
 */
export function fixedWorkload(shapes: readonly Omit<Shape, 'weight' | 'key'>[], weights: readonly number[]): WorkloadModel {
  const sum = weights.reduce((a, b) => a + b, 0);
  const gpuOf = (s: Omit<Shape, 'weight' | 'key'>, i: number): number => (weights[i] ?? 0) * s.count * s.computeShare;
  const gpu = shapes.reduce((a, s, i) => a + gpuOf(s, i), 0);
  const restricted = new Map<string, { models: readonly string[]; share: number }>();
  shapes.forEach((s, i) => {
    if (s.models.length === 0 || gpuOf(s, i) === 0) return;
    const models = s.models.map((m) => m.toLowerCase()).sort();
    const key = models.join('|');
    restricted.set(key, { models, share: (restricted.get(key)?.share ?? 0) + gpuOf(s, i) / gpu });
  });
  const keyed = shapes.map((s, i) => ({ ...s, key: `fixed${i}`, weight: (weights[i] ?? 0) / sum }));
  return {
    version: -1,
    shapes: keyed,
    restricted: [...restricted].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, r]) => r),
    wide: gpu > 0 ? keyed.flatMap((s, i) => (s.count >= 2 ? [{ shape: s, share: gpuOf(s, i) / gpu }] : [])) : [],
  };
}
