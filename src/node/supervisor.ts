/**
 * Watches running tasks to their end. A task this daemon started is a child of its spawner
 * (spawner.ts), which reports its exit. A task adopted after a restart is not, nor is one whose
 * spawner died: its pid is polled, and its start time compared so a reused pid never passes for
 * it. Either way the wrapper's status file says how the command ended. Meanwhile each task's
 * region is read once a second: for its peak GPU memory, and for what the monitor's sampler
 * reports of it (src/monitor/sampler.ts reads `usage`, so no region is read twice).
 */
import { existsSync } from 'node:fs';
import { readRegion, usageByDevice, type DeviceUsage } from '../gpu/region/index.js';
import { readExitStatus, type ExitStatus } from './launcher.js';
import { isSameLiveProcess } from './proc.js';

export { usageByDevice, type DeviceUsage } from '../gpu/region/index.js';

/** How a task's process ended, as far as can be known. */
export interface Ending {
  /** From the wrapper's status file; null when it wrote none (it was SIGKILLed, or never ran). */
  readonly status: ExitStatus | null;
  /** The wrapper's own exit as waitpid saw it; null for polled tasks (not our spawner's child). */
  readonly wrapper: { readonly code: number | null; readonly signal: string | null } | null;
  readonly peakMemoryBytes: number | null;
}

interface Watched {
  readonly statusFile: string;
  readonly regionPath: string;
  readonly pid: number;
  readonly startTime: number;
  /** Polled (adopted, or its spawner died); else its exit is reported (`exited`). */
  polled: boolean;
  peak: number | null;
  /** The last sample, per CUDA device ordinal inside the task. */
  latest: DeviceUsage[] | null;
  ended: boolean;
}

export interface SupervisorOptions {
  readonly onEnd: (id: string, ending: Ending) => void;
  /** How often adopted pids are checked. */
  readonly pollMs?: number;
  /** How often regions are read for peak memory. */
  readonly sampleMs?: number;
  /** How many tasks one turn of the event loop samples in the timer's round (SAMPLE_CHUNK). */
  readonly sampleChunk?: number;
}

/**
 * The timer's round of samples reads this many tasks' regions per turn of the event loop, then
 * yields (setImmediate) so that requests waiting meanwhile are served. Each task costs a stat
 * (and a read when it has a region), about 10-20 us on the 2-core development VM: with 2,000
 * live tasks (500 starts a second trailing by seconds) one round in one go held the event loop
 * 15-40 ms every second, which a submission arriving then waited out (its p99 is about the
 * longest stall: docs/benchmarks.md, session 24).
 */
export const SAMPLE_CHUNK = 128;

export class Supervisor {
  private readonly watched = new Map<string, Watched>();
  /** Tasks whose exit the spawner reports, by `pid:startTime` (a pid alone may be reused). */
  private readonly byProcess = new Map<string, string>();
  private readonly pollTimer: NodeJS.Timeout;
  private readonly sampleTimer: NodeJS.Timeout;
  /** The timer's round in progress (tasks still to sample), or null. */
  private round: string[] | null = null;
  private roundAt = 0;
  private readonly chunk: number;

  constructor(private readonly options: SupervisorOptions) {
    this.pollTimer = setInterval(() => this.pollAdopted(), options.pollMs ?? 200);
    this.chunk = Math.max(1, options.sampleChunk ?? SAMPLE_CHUNK);
    this.sampleTimer = setInterval(() => this.startRound(), options.sampleMs ?? 1000);
    this.pollTimer.unref();
    this.sampleTimer.unref();
  }

  /** Watches a task this daemon's spawner just started: its exit comes to `exited`. */
  watchSpawned(id: string, pid: number, startTime: number, statusFile: string, regionPath: string): void {
    this.watched.set(id, { statusFile, regionPath, pid, startTime, polled: false, peak: null, latest: null, ended: false });
    this.byProcess.set(`${pid}:${startTime}`, id);
  }

  /** Watches a task started by an earlier daemon (the pid's start time must still match). */
  watchAdopted(id: string, pid: number, startTime: number, statusFile: string, regionPath: string): void {
    this.watched.set(id, { statusFile, regionPath, pid, startTime, polled: true, peak: null, latest: null, ended: false });
  }

  /** The spawner reports that one of its processes ended; not one of ours: ignored. */
  exited(pid: number, startTime: number, wrapper: { code: number | null; signal: string | null }): void {
    const key = `${pid}:${startTime}`;
    const id = this.byProcess.get(key);
    if (id === undefined) return;
    this.byProcess.delete(key);
    const w = this.watched.get(id);
    if (w !== undefined && w.pid === pid && w.startTime === startTime) this.finish(id, w, wrapper);
  }

  /** The spawner died: nothing reports its processes' exits any more, so they are polled. */
  spawnerLost(): void {
    for (const id of this.byProcess.values()) {
      const w = this.watched.get(id);
      if (w !== undefined) w.polled = true;
    }
    this.byProcess.clear();
  }

  /** The task's usage at the last sample (about a second old at most); null before its first CUDA call. */
  usage(id: string): readonly DeviceUsage[] | null {
    return this.watched.get(id)?.latest ?? null;
  }

  /** Samples every watched task's region now (a decision that cannot wait for the next tick). */
  sampleNow(): void {
    this.sampleAll();
  }

  /** Ids of the tasks being watched. */
  ids(): string[] {
    return [...this.watched.keys()];
  }

  close(): void {
    clearInterval(this.pollTimer);
    clearInterval(this.sampleTimer);
    this.round = null;
    this.watched.clear();
    this.byProcess.clear();
  }

  private pollAdopted(): void {
    for (const [id, w] of this.watched) {
      if (w.polled && !isSameLiveProcess(w.pid, w.startTime)) this.finish(id, w, null);
    }
  }

  private finish(id: string, w: Watched, wrapper: { code: number | null; signal: string | null } | null): void {
    if (w.ended || this.watched.get(id) !== w) return;
    w.ended = true;
    this.sample(w);
    this.watched.delete(id);
    this.byProcess.delete(`${w.pid}:${w.startTime}`);
    this.options.onEnd(id, {
      status: readExitStatus(w.statusFile),
      wrapper: wrapper === null ? null : { code: wrapper.code, signal: wrapper.signal },
      peakMemoryBytes: w.peak,
    });
  }

  private sampleAll(): void {
    for (const w of this.watched.values()) this.sample(w);
    // Everything is fresh now: a round under way has nothing left to do.
    this.round = null;
  }

  /**
   * The timer's round: every task watched now, SAMPLE_CHUNK per turn of the event loop (a task
   * that ends meanwhile is sampled by its finish and skipped here). A round still under way
   * when the next tick comes (a very slow machine) goes on; the tick starts none.
   */
  private startRound(): void {
    if (this.round !== null) return;
    this.round = [...this.watched.keys()];
    const at = ++this.roundAt;
    this.sampleSome(at);
  }

  private sampleSome(at: number): void {
    const round = this.round;
    if (round === null || at !== this.roundAt) return;
    for (let n = 0; n < this.chunk; n++) {
      const id = round.pop();
      if (id === undefined) {
        this.round = null;
        return;
      }
      const w = this.watched.get(id);
      if (w !== undefined && !w.ended) this.sample(w);
    }
    setImmediate(() => this.sampleSome(at));
  }

  /** Adds up what every process of the task holds now; a task that never used CUDA has no region. */
  private sample(w: Watched): void {
    // Most short tasks never touch CUDA: no region, and no exception thrown to say so.
    if (!existsSync(w.regionPath)) return;
    let devices: DeviceUsage[];
    try {
      devices = usageByDevice(readRegion(w.regionPath).slots);
    } catch {
      return;
    }
    w.peak = Math.max(w.peak ?? 0, devices.reduce((sum, d) => sum + d.memoryBytes, 0));
    w.latest = devices;
  }
}
