/**
 * Background work that yields to the kubelet's calls: a job added runs once no call has come for
 * `quietMs` (each call moves that moment), or once the oldest job has waited `maxWaitMs`,
 * whichever is first; jobs run in the order added.
 *
 * Why (session 25, docs/benchmarks.md "Device plugin: Allocate"): the pod's patch that records
 * an Allocate (`gpushare.io/allocated`) used to start "after the answer" with setImmediate; but
 * grpc-js writes a unary answer to the socket only after the turn's immediates
 * (bench/grpc-after-answer.bench.ts), so the patch's work (client-node's request, the socket
 * write that wakes the API server) ran before the kubelet got its answer, and the watch event it
 * brings back met the kubelet's next call: on the 2-core development VM, Allocate's p50 as the
 * kubelet sees it was 4.9 ms with the patch that way and 2.5 ms with it 5 ms later, the same
 * build otherwise. The patch records what the ledger already holds (written before the answer),
 * so when it runs changes no answer; only how soon the pod shows it.
 */
export class QuietQueue {
  private readonly jobs: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;
  private oldestAt = 0;

  constructor(
    private readonly quietMs: number,
    private readonly maxWaitMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** A call has come: queued work waits for quiet again (no longer than maxWaitMs in all). */
  busy(): void {
    if (this.jobs.length > 0) this.arm();
  }

  /** Queues `job` for the next quiet moment. */
  add(job: () => void): void {
    if (this.jobs.length === 0) this.oldestAt = this.now();
    this.jobs.push(job);
    this.arm();
  }

  /** How many jobs wait. */
  pending(): number {
    return this.jobs.length;
  }

  /** Runs every queued job now (shutdown, tests that wait for the patches). */
  flush(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    for (const job of this.jobs.splice(0)) job();
  }

  /** Drops the queued jobs and the timer (the plugin stops: its ledger says what was not recorded). */
  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.jobs.length = 0;
  }

  private arm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    const wait = Math.max(0, Math.min(this.quietMs, this.oldestAt + this.maxWaitMs - this.now()));
    this.timer = setTimeout(() => this.flush(), wait);
  }
}

/**
 * Runs `job` once the current call's answer is on its socket: a 0 ms timer, since grpc-js writes a
 * unary answer after the turn's immediates (bench/grpc-after-answer.bench.ts), so a setImmediate
 * would run first. For a call's log lines: the DaemonSet's stderr is a pipe, and a write to it
 * (synchronous for pipes on Linux) wakes its reader: 0.04 ms at p50 but 1.9 ms at p99 on the
 * development VM (session 25), in front of the answer it logged.
 */
export function afterAnswer(job: () => void): void {
  setTimeout(job, 0);
}
