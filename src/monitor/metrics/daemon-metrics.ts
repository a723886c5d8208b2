/**
 * The daemon's own gpushare_* metrics: what happens between samples (queue waits, scheduling
 * passes, suspensions, API requests), observed where it happens, and the tenants' usage
 * against their quotas, read at scrape time.
 */
import { Counter, Gauge, Histogram } from 'prom-client';
import type { AnyRegistry } from './registry.js';

/** Seconds: from a fast API answer to a task that waited an hour. */
const WAIT_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200];
/** A scheduling pass is budgeted at 2 ms at 1,000 nodes; one machine's is far below. */
const PASS_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
/** Suspend and resume move up to a GPU's memory: 0.5 s budgeted for 11 GiB. */
const SWAP_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** The API is budgeted at 5 ms p99. */
const API_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

/** What a queue pass decided, one count per task it decided about. */
export const DECISION_OUTCOMES = ['start', 'resume', 'wait', 'preempt'] as const;
export type DecisionOutcome = (typeof DECISION_OUTCOMES)[number];

/** A tenant's figures as the daemon reports them (TenantView's shape); null quota: no limit. */
export interface TenantFigures {
  readonly name: string;
  readonly usage: { readonly gpus: number; readonly memoryBytes: number; readonly computeMilli: number };
  readonly quota: { readonly gpus: number | null; readonly memoryBytes: number | null; readonly computeMilli: number | null };
}

/** Resources in base units: GPUs counted, bytes, compute in GPUs (1 = a whole GPU's compute). */
const RESOURCES: ReadonlyArray<readonly [string, (u: TenantFigures['usage'] | TenantFigures['quota']) => number | null]> = [
  ['gpus', (u) => u.gpus],
  ['memory_bytes', (u) => u.memoryBytes],
  ['compute_gpus', (u) => (u.computeMilli === null ? null : u.computeMilli / 1000)],
];

export class DaemonMetrics {
  readonly queueWait: Histogram;
  readonly decisions: Counter<'outcome'>;
  readonly passSeconds: Histogram;
  readonly suspendSeconds: Histogram;
  readonly resumeSeconds: Histogram;
  readonly suspendBytes: Counter;
  readonly resumeBytes: Counter;
  readonly apiSeconds: Histogram<'route' | 'method' | 'status_class'>;
  /** Overcommit's swaps (residency-shell.ts's events): by direction, and why a slice went out. */
  readonly overcommitSwaps: Counter<'direction' | 'reason'>;
  readonly overcommitSwapSeconds: Histogram<'direction'>;
  readonly overcommitHandoverSeconds: Histogram;
  /** How long a slice waited: to come back in (`in`), or for room for an allocation (`room`). */
  readonly overcommitWaitSeconds: Histogram<'kind'>;
  readonly overcommitRoomRefused: Counter;
  private readonly tenantUsage: Gauge<'tenant' | 'resource'>;
  private readonly tenantQuota: Gauge<'tenant' | 'resource'>;

  constructor(registry: AnyRegistry) {
    const r = [registry];
    this.queueWait = new Histogram({ name: 'gpushare_queue_wait_seconds', help: 'How long each task that started had waited since it was submitted.', buckets: WAIT_BUCKETS, registers: r });
    this.decisions = new Counter({ name: 'gpushare_scheduling_decisions_total', help: 'Decisions queue passes made about tasks, by outcome (start, resume, wait, preempt).', labelNames: ['outcome'], registers: r });
    for (const outcome of DECISION_OUTCOMES) this.decisions.inc({ outcome }, 0);
    this.passSeconds = new Histogram({ name: 'gpushare_scheduling_pass_seconds', help: 'Time a queue pass took to decide (the scheduler over the whole queue).', buckets: PASS_BUCKETS, registers: r });
    this.suspendSeconds = new Histogram({ name: 'gpushare_suspend_seconds', help: "Time to suspend a task (its GPU state to host memory).", buckets: SWAP_BUCKETS, registers: r });
    this.resumeSeconds = new Histogram({ name: 'gpushare_resume_seconds', help: 'Time to resume a task (its GPU state back).', buckets: SWAP_BUCKETS, registers: r });
    this.suspendBytes = new Counter({ name: 'gpushare_suspend_bytes_total', help: 'GPU memory moved to the host by suspensions.', registers: r });
    this.resumeBytes = new Counter({ name: 'gpushare_resume_bytes_total', help: 'GPU memory moved back by resumptions.', registers: r });
    this.apiSeconds = new Histogram({ name: 'gpushare_api_request_seconds', help: 'API request latency, by route pattern, method and status class (2xx, 4xx, ...).', labelNames: ['route', 'method', 'status_class'], buckets: API_BUCKETS, registers: r });
    this.overcommitSwaps = new Counter({ name: 'gpushare_overcommit_swaps_total', help: 'Slices swapped out or in by memory overcommit, by direction and reason (out: room, idle, turn, bound; in: in).', labelNames: ['direction', 'reason'], registers: r });
    this.overcommitSwapSeconds = new Histogram({ name: 'gpushare_overcommit_swap_seconds', help: "Time a slice swap of memory overcommit took, by direction.", labelNames: ['direction'], buckets: SWAP_BUCKETS, registers: r });
    this.overcommitHandoverSeconds = new Histogram({ name: 'gpushare_overcommit_handover_seconds', help: 'Wall time of an overlapped hand-over of memory overcommit (the outgoing slices swapped out while the incoming one swaps in), from asking both to the incoming one running.', buckets: SWAP_BUCKETS, registers: r });
    this.overcommitWaitSeconds = new Histogram({ name: 'gpushare_overcommit_wait_seconds', help: 'How long a slice waited under memory overcommit: to come back in (kind in) or for room for an allocation (kind room).', labelNames: ['kind'], buckets: WAIT_BUCKETS, registers: r });
    this.overcommitRoomRefused = new Counter({ name: 'gpushare_overcommit_room_refused_total', help: 'Allocations whose wait for room ended without room (the program got out-of-memory).', registers: r });
    this.tenantUsage = new Gauge({ name: 'gpushare_tenant_usage', help: "What a tenant's running tasks hold, by resource (gpus, memory_bytes, compute_gpus).", labelNames: ['tenant', 'resource'], registers: r });
    this.tenantQuota = new Gauge({ name: 'gpushare_tenant_quota', help: "A tenant's quota, by resource; absent where it has no limit.", labelNames: ['tenant', 'resource'], registers: r });
  }

  applyTenants(tenants: readonly TenantFigures[]): void {
    this.tenantUsage.reset();
    this.tenantQuota.reset();
    for (const t of tenants) {
      for (const [resource, read] of RESOURCES) {
        this.tenantUsage.set({ tenant: t.name, resource }, read(t.usage) ?? 0);
        const limit = read(t.quota);
        if (limit !== null) this.tenantQuota.set({ tenant: t.name, resource }, limit);
      }
    }
  }
}
