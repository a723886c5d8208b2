/**
 * Memory overcommit's shell (issue 22 items 3-4): every `tickMs` it looks at the running tasks
 * on overcommitted GPUs (what their regions hold, whether their launch counts moved, whether
 * their library said it wants in), asks the pure planner (residency.ts) which slices should be
 * resident, and performs its swaps through SwapSessions without stopping the task's processes
 * (`park`): a swapped-out slice's program runs on until it launches work, which the library
 * holds, telling the daemon on its control socket (a wants-in), which brings the next look at
 * once. Each swap is a task event: `task.swapped-out` (why, for whom, bytes, seconds) and
 * `task.swapped-in` (how long the program waited, the swap's seconds, and under time-sharing the
 * turn's lost share: lost seconds / quantum). A swap-in that others were swapped out for is an
 * overlapped hand-over (apply, below): asked at once with their swap-outs, its allocations
 * waiting on the card for their releases; its event carries the split (`handover`).
 *
 * Waiting for room (SWAP.md): it keeps a watching connection to every swappable slice's
 * processes (SwapSessions.watch); an allocation the driver refused for want of memory comes as
 * a wants-room with its bytes (`task.wants-room`), the planner serves it in the queue of
 * waits, and the answer goes back on that connection: `room` once the outs it needed are done
 * (`task.room-made`, with the wait) or `no-room` at the bound (`task.wants-room-refused`, with
 * who held the card). A slice given room counts at its bytes plus the grant until its region
 * shows the allocation (or GRANT_HOLD_MS passes), so the next look does not hand that room out again.
 */
import type { Logger } from 'pino';
import type { Task } from '../contract/task.js';
import type { TaskEvents } from './events.js';
import { planResidency, type ResidencyAction, type ResidencyGpu, type ResidencySettings, type ResidentSlice } from './residency.js';
import type { DeviceUsage } from './supervisor.js';
import { signalGroup } from './proc.js';
import { SwapSessions, swapDirFor, type SwapResult } from './swap.js';

const SIGSTOP = 19;

export interface ResidencyShellOptions {
  readonly settings: ResidencySettings;
  readonly tickMs: number;
  /** The overcommitted GPUs, with their cards' memory. */
  readonly gpus: () => readonly ResidencyGpu[];
  /** Tasks in state running. */
  readonly running: () => readonly Task[];
  readonly usage: (id: string) => readonly DeviceUsage[] | null;
  /** Reads the regions afresh: room is granted from what the card holds now, not a second ago. */
  readonly sampleNow?: () => void;
  /** Whether the task was started with slice swap (GPUSHARE_SWAP): without it no process of it ever gets a control socket. Absent: every task. */
  readonly swapOn?: (task: Task) => boolean;
  /** A suspension or resumption is in flight (lifecycle.ts): the slice is not ours to move. */
  readonly lifecycleBusy: (id: string) => boolean;
  readonly swaps: SwapSessions;
  readonly events: TaskEvents;
  readonly log: Logger;
  readonly now: () => number;
}

/** How long a slice whose swap-out was refused as `exported` (SWAP.md, "Sharing memory between processes") is not offered for swap-out again. */
const EXPORTED_RETRY_MS = 30_000;

/** What the shell remembers of a slice between looks. */
interface Seen {
  launches: number;
  lastActiveAt: number;
  since: number;
  out: { readonly movableBytes: number; readonly seconds: number; readonly reason: string; readonly devices: readonly string[] } | null;
  wantsInSince: number | null;
  busy: boolean;
  /** Over its wait's bound already said (once per wait). */
  overdueSaid: boolean;
  /** Bytes its staging was last pinned for (staged ahead: a swap-out then pins nothing). */
  stagedBytes: number;
  staging: boolean;
  /** Its processes' allocations waiting for room (pid -> bytes asked), since when; null: none. */
  wantsRoom: { readonly pids: Map<number, number>; readonly since: number } | null;
  /** Room granted and not yet seen in its region: counted on top of `base` until it shows. */
  grant: { readonly base: number; readonly bytes: number; readonly at: number } | null;
  /** Not offered to the planner as swappable before this time: its swap-out was refused because another process maps its memory (`exported`). */
  notSwappableUntil: number;
  /** The first look whose region showed GPU memory (its first allocation, give or take a look); null: none yet. */
  heldSince: number | null;
}

/** An overlapped hand-over's figures (seconds): the outgoing swap-outs' own (the longest), when the last ended (from the start), the swap-in's, of it the wait for room, and the wall time from the start to the swap-in's end. */
interface Handover {
  readonly from: readonly string[];
  readonly outSeconds: number;
  readonly outWallSeconds: number;
  readonly inSeconds: number;
  readonly waitSeconds: number;
  readonly wallSeconds: number;
}

/**
 * How long a hand-over's swap-in waits for the outgoing slices' releases: a swap-out of a whole
 * card (80 GB at 50 GB/s) takes under 2 s, its drain a long kernel's length; its failure ends
 * the wait at once (stopIn).
 */
const HANDOVER_WAIT_MS = 30_000;

/** How long a grant of room counts before the slice's region shows the allocation it was for. */
const GRANT_HOLD_MS = 3000;

/**
 * How long after its first GPU memory (the first look whose region shows any) a slice may stay
 * `pending` (counted at what it holds, not its promise) without a control socket. A swappable
 * allocation opens the socket in the same call (swap_ctl.c), so a slice that holds memory and
 * still has none after a few looks allocates in ways that never open one (cuMemAllocAsync and
 * pools, expandable segments' own VMM, only pieces under the 2 MiB granularity; SWAP.md, "What
 * is swapped"): from then on it counts at its promise, as a slice that cannot be swapped does,
 * so the daemon never promises its room to others and the task never meets out-of-memory
 * growing into its own promise. 10 s: a program's first small allocations (a context's,
 * cuBLAS's workspace) come within a second of its first big one, and a loaded machine's
 * scheduling delays are well under it; what a slice can take from others meanwhile is bounded
 * by the room rule, which swaps the lowest-priority idle slice out when the card reads over.
 * Counted from its first GPU memory, not its start: before that it holds nothing, and a bound
 * from the start would count a program still importing its libraries at its whole promise (the
 * overcommit-room race this state exists to avoid, issue 22); the risk begins with allocations
 * that open no socket, and the first of them starts the clock.
 */
export const PENDING_GRACE_MS = 10_000;

/** Growth that has the staging pinned again ahead of a swap. */
const STAGE_STEP_BYTES = 2 ** 30;

export class ResidencyShell {
  private readonly seen = new Map<string, Seen>();
  private readonly timer: NodeJS.Timeout;
  private pending: NodeJS.Timeout | null = null;
  private closed = false;
  /** A wants-room came since the last look: read the regions afresh first. */
  private fresh = false;

  constructor(private readonly options: ResidencyShellOptions) {
    this.timer = setInterval(() => this.tick(), options.tickMs);
    this.timer.unref();
  }

  /** Whether the slice is swapped out by overcommit (its task's processes run on, held at their next launch). */
  parked(id: string): boolean {
    return this.seen.get(id)?.out != null;
  }

  /**
   * A parked slice is being suspended (lifecycle.ts): it is out already, so its group only
   * stops; its swap-out's figures stand for the suspension's. From now on the lifecycle's.
   */
  handOver(id: string, pgid: number): SwapResult {
    const out = this.seen.get(id)?.out;
    this.seen.delete(id);
    signalGroup(pgid, SIGSTOP);
    const bytes = out?.movableBytes ?? 0;
    return { ok: true, value: { path: 'swap', bytes, residentBytes: 0, seconds: 0, gbps: null, processes: 0, devices: out?.devices ?? [] } };
  }

  /** The task left the overcommit's hands (ended): forgotten; its connections stay with SwapSessions. */
  forget(id: string): void {
    this.seen.delete(id);
    this.options.swaps.unwatch(id);
  }

  close(): void {
    for (const id of this.seen.keys()) this.options.swaps.unwatch(id);
    this.closed = true;
    clearInterval(this.timer);
    if (this.pending !== null) clearTimeout(this.pending);
  }

  /** One look: gather, plan, perform. */
  tick(): void {
    if (this.closed) return;
    // A wants-room is answered from the regions as they are now: the supervisor's sample can be
    // a second old, from before another slice allocated, and room granted from it does not exist.
    if (this.fresh) this.options.sampleNow?.();
    this.fresh = false;
    const now = this.options.now();
    const gpus = this.options.gpus();
    const uuids = new Set(gpus.map((g) => g.uuid));
    const slices: ResidentSlice[] = [];
    const live = new Set<string>();
    for (const task of this.options.running()) {
      const first = task.gpus?.[0];
      if (task.pid === null || first === undefined || !uuids.has(first.uuid)) continue;
      live.add(task.id);
      slices.push(this.sliceOf(task, now));
    }
    for (const id of this.seen.keys()) if (!live.has(id)) this.forget(id);
    const plan = planResidency(gpus, slices, this.options.settings, now);
    for (const o of plan.overdue) {
      const s = this.seen.get(o.id);
      if (s === undefined || s.overdueSaid || s.out === null) continue; // a wait for room says so in its refusal
      s.overdueSaid = true;
      this.options.events.record('task.swap-wait-overdue', o.id, { waitedMs: o.waitedMs, maxWaitMs: this.options.settings.maxWaitMs, heldBy: o.heldBy });
    }
    void this.apply(plan.actions);
  }

  /**
   * The swaps. A swap-in the planner made room for by swapping others out is a hand-over: it
   * starts together with those swap-outs (PCIe carries both directions at once), its
   * allocations waiting on the card for the outgoing slices' releases (the library tries again
   * every millisecond, up to HANDOVER_WAIT_MS), not on the planner's arithmetic: both slices
   * count as resident (busy) until their swaps end. A hand-over whose swap-out failed stops its
   * swap-in's wait (the room will not come; the slice stays out and asks again), unless the
   * outgoing task went away (its memory went with it). Rooms are answered once their outs are done.
   */
  private async apply(actions: readonly ResidencyAction[]): Promise<void> {
    const byId = new Map(this.options.running().map((t) => [t.id, t]));
    for (const a of actions) if (a.kind === 'no-room') void this.answerRoom(a, false);
    const steps = actions.flatMap((a) => {
      if (a.kind === 'room' || a.kind === 'no-room') return [];
      const task = byId.get(a.id);
      const s = this.seen.get(a.id);
      if (task === undefined || s === undefined) return [];
      s.busy = true; // at once: the next look leaves it alone
      return [{ a, task, s }];
    });
    const started = performance.now();
    const outSteps = steps.filter((x) => x.a.kind === 'out');
    const outsFor = (id: string) => outSteps.filter((x) => x.a.kind === 'out' && x.a.for === id);
    const outs = outSteps.map(async (x) => {
      const r = await this.swap(x.task, x.a, 0);
      const ended = (performance.now() - started) / 1000;
      x.s.busy = false;
      this.record(x.task, x.a, x.s, r, null);
      return { x, r, ended };
    });
    const ins = steps
      .filter((x) => x.a.kind === 'in')
      .map(async (x) => {
        const mine = outsFor(x.a.id);
        const handover = mine.length > 0;
        const pending = this.swap(x.task, x.a, handover ? HANDOVER_WAIT_MS : 0);
        const done = await Promise.all(outs.filter((_, i) => mine.includes(outSteps[i]!)));
        // A failed swap-out leaves its memory where it was: the waiting swap-in stops.
        if (done.some((d) => !d.r.ok && d.r.gone !== true) && x.task.pid !== null) void this.options.swaps.stopIn(x.task.id, swapDirFor(x.task.regionPath));
        const r = await pending;
        const wall = (performance.now() - started) / 1000;
        const outSeconds = done.reduce((most, d) => Math.max(most, d.r.ok ? d.r.value.seconds : 0), 0);
        // Busy until recorded: a swap-in answered before its swap-out must not read as out and idle meanwhile.
        x.s.busy = false;
        this.record(x.task, x.a, x.s, r, handover && r.ok ? { outSeconds, outWallSeconds: done.reduce((most, d) => Math.max(most, d.ended), 0), inSeconds: r.value.seconds, waitSeconds: r.value.waitSeconds ?? 0, wallSeconds: wall, from: mine.map((m) => m.a.id) } : null);
      });
    const outDone = await Promise.all(outs);
    const failedFor = new Set(outDone.filter((d) => !d.r.ok).map((d) => (d.x.a.kind === 'out' ? d.x.a.for : null)));
    await Promise.all([...ins, ...actions.filter((a) => a.kind === 'room' && !failedFor.has(a.id)).map((a) => this.answerRoom(a, true))]);
  }

  /** Room made for a slice's waiting allocations (they retry), or none at the bound (they fail): said to its library, recorded. */
  private async answerRoom(a: ResidencyAction, room: boolean): Promise<void> {
    const s = this.seen.get(a.id);
    const wait = s?.wantsRoom;
    if (s === undefined || wait == null || (a.kind !== 'room' && a.kind !== 'no-room')) return;
    s.wantsRoom = null;
    const now = this.options.now();
    if (room) {
      s.grant = { base: s.grant?.base ?? this.bytesOf(a.id), bytes: (s.grant?.bytes ?? 0) + a.bytes, at: now };
      s.since = now; // its turn on the card starts now, as for a slice that came in
    }
    await this.options.swaps.answerRoom(a.id, [...wait.pids.keys()], room);
    if (room) {
      this.options.events.record('task.room-made', a.id, { bytes: a.bytes, waitedMs: a.waitedMs });
      this.options.log.info({ task: a.id, bytes: a.bytes, waitedMs: a.waitedMs }, 'overcommit: room made for a waiting allocation');
    } else if (a.kind === 'no-room') {
      this.options.events.record('task.wants-room-refused', a.id, { bytes: a.bytes, waitedMs: a.waitedMs, maxWaitMs: this.options.settings.maxWaitMs, heldBy: a.heldBy });
      this.options.log.warn({ task: a.id, bytes: a.bytes, waitedMs: a.waitedMs, heldBy: a.heldBy }, 'overcommit: no room for a waiting allocation within its bound (out of memory)');
    }
  }

  private bytesOf(id: string): number {
    return (this.options.usage(id) ?? []).reduce((sum, d) => sum + d.memoryBytes, 0);
  }

  /** A process of the slice waits for room (the library said so). */
  private wantsRoom(id: string, pid: number, bytes: number): void {
    const s = this.seen.get(id);
    if (s === undefined || s.out !== null) return;
    const now = this.options.now();
    s.lastActiveAt = now; // it allocates
    if (s.wantsRoom === null) {
      s.wantsRoom = { pids: new Map(), since: now };
      this.options.events.record('task.wants-room', id, { bytes, pid });
    }
    s.wantsRoom.pids.set(pid, bytes);
    this.fresh = true;
    this.soon();
  }

  /** A look as soon as possible (a wants-in came). */
  private soon(): void {
    if (this.pending !== null || this.closed) return;
    this.pending = setTimeout(() => {
      this.pending = null;
      this.tick();
    }, 0);
  }

  private sliceOf(task: Task, now: number): ResidentSlice {
    const usage = this.options.usage(task.id) ?? [];
    const bytes = usage.reduce((sum, d) => sum + d.memoryBytes, 0);
    const launches = usage.reduce((sum, d) => sum + d.kernelsLaunched, 0);
    let s = this.seen.get(task.id);
    if (s === undefined) {
      s = { launches, lastActiveAt: now, since: now, out: null, wantsInSince: null, busy: false, overdueSaid: false, stagedBytes: 0, staging: false, wantsRoom: null, grant: null, notSwappableUntil: 0, heldSince: null };
      this.seen.set(task.id, s);
    } else if (launches !== s.launches) {
      s.launches = launches;
      s.lastActiveAt = now;
    }
    const gpus = task.gpus ?? [];
    const pid = task.pid ?? -1;
    // Several GPUs: not moved (a slice is swapped whole, and the planner looks at one card at a time).
    const swappable = s.out !== null || (now >= s.notSwappableUntil && gpus.length === 1 && SwapSessions.swappable(swapDirFor(task.regionPath), pid));
    if (s.heldSince === null && bytes > 0) s.heldSince = now;
    // Not swappable yet (starting: no swappable allocation has opened its socket), its memory
    // all in its region; only while it can still get a socket: swap on for it, and within
    // PENDING_GRACE_MS of its first GPU memory. After that it counts at its promise.
    const pending =
      !swappable &&
      now >= s.notSwappableUntil &&
      gpus.length === 1 &&
      (this.options.swapOn?.(task) ?? true) &&
      (s.heldSince === null || now - s.heldSince < PENDING_GRACE_MS) &&
      SwapSessions.pending(swapDirFor(task.regionPath), pid);
    if (swappable && s.out === null && !s.busy && !s.staging && bytes >= s.stagedBytes + STAGE_STEP_BYTES) void this.stage(task, s, bytes);
    if (swappable && s.out === null) void this.options.swaps.watch(task.id, swapDirFor(task.regionPath), pid, (p, b) => this.wantsRoom(task.id, p, b));
    // A grant counts until the region shows what it was for.
    if (s.grant !== null && (bytes >= s.grant.base + s.grant.bytes || now - s.grant.at >= GRANT_HOLD_MS)) s.grant = null;
    const counted = s.grant === null ? bytes : Math.max(bytes, s.grant.base + s.grant.bytes);
    const asked = s.wantsRoom === null ? 0 : [...s.wantsRoom.pids.values()].reduce((sum, b) => sum + b, 0);
    return {
      id: task.id,
      gpu: gpus[0]?.uuid ?? '',
      priority: task.priority,
      swappable,
      pending,
      out: s.out !== null,
      busy: s.busy || this.options.lifecycleBusy(task.id),
      bytes: counted,
      movableBytes: s.out?.movableBytes ?? counted,
      promisedBytes: gpus[0]?.memoryBytes ?? 0,
      lastActiveAt: s.lastActiveAt,
      wantsInSince: s.wantsInSince,
      since: s.since,
      wantsRoom: s.wantsRoom === null || s.out !== null ? null : { bytes: asked, since: s.wantsRoom.since },
    };
  }

  /**
   * Pins the slice's staging ahead (SWAP.md, "Swap-out, swap-in"), so its swap-outs run at the
   * copy rate: host memory the size of the slice's swappable bytes, pinned while it runs.
   */
  private async stage(task: Task, s: Seen, bytes: number): Promise<void> {
    // Not `busy`: a swap-out may be planned meanwhile (the library answers it after the pinning).
    s.staging = true;
    s.stagedBytes = bytes;
    try {
      const ok = await SwapSessions.stage(swapDirFor(task.regionPath), task.pid ?? -1);
      if (!ok) this.options.log.warn({ task: task.id, bytes }, 'overcommit: could not pin the staging ahead; its first swap-out pins it');
    } finally {
      s.staging = false;
    }
  }

  /** One swap; the caller ends the slice's `busy` when it records the outcome. `roomWaitMs`: a swap-in's wait for room (a hand-over). */
  private async swap(task: Task, a: ResidencyAction, roomWaitMs: number): Promise<SwapResult> {
    const pid = task.pid;
    if (pid === null) return { ok: false, code: 'swap-unavailable', message: 'the task has no process' };
    try {
      return a.kind === 'out'
        ? await this.options.swaps.out(task.id, swapDirFor(task.regionPath), pid, { onWantsIn: () => this.wantsIn(task.id) })
        : await this.options.swaps.in(task.id, pid, true, roomWaitMs);
    } catch (e) {
      return { ok: false, code: 'swap-unavailable', message: e instanceof Error ? e.message : String(e) };
    }
  }

  /** A swap's outcome remembered, and its event. */
  private record(task: Task, a: ResidencyAction, s: Seen, r: SwapResult, handover: Handover | null): void {
    if (this.closed || this.seen.get(task.id) !== s || (a.kind !== 'out' && a.kind !== 'in')) return;
    const now = this.options.now();
    if (!r.ok) {
      if (a.kind === 'out') s.wantsInSince = null;
      // Its memory is mapped by another process (CUDA IPC): asked again at once, it would be
      // refused again at every look; it stays resident, and the planner looks elsewhere, a while.
      if (a.kind === 'out' && r.libraryCode === 'exported') s.notSwappableUntil = now + EXPORTED_RETRY_MS;
      this.options.log.warn({ task: task.id, op: a.kind, message: r.message }, 'overcommit: swap refused');
      this.options.events.record(a.kind === 'out' ? 'task.swap-out-refused' : 'task.swap-in-refused', task.id, { code: r.code, message: r.message });
      return;
    }
    const seconds = Math.round(r.value.seconds * 1000) / 1000;
    if (a.kind === 'out') {
      s.out = { movableBytes: r.value.bytes, seconds, reason: a.reason, devices: r.value.devices };
      // Its waiting allocations retry once it is back in (the library ends their waits at the hold).
      s.wantsRoom = null;
      s.grant = null;
      s.since = now;
      const early = s.wantsInSince !== null;
      s.wantsInSince = null;
      s.overdueSaid = false;
      this.options.events.record('task.swapped-out', task.id, { reason: a.reason, for: a.for, swappedBytes: r.value.bytes, residentBytes: r.value.residentBytes, swapSeconds: seconds, gbps: r.value.gbps });
      this.options.log.info({ task: task.id, reason: a.reason, for: a.for, bytes: r.value.bytes, seconds }, 'overcommit: slice swapped out');
      if (early) this.wantsIn(task.id);
    } else {
      const turn = s.out?.reason === 'turn' || s.out?.reason === 'bound';
      // The turn's lost time: the hand-over's wall time when overlapped, else its own two swaps.
      const lost = handover !== null ? handover.wallSeconds : (s.out?.seconds ?? 0) + seconds;
      s.out = null;
      s.since = now;
      s.lastActiveAt = now;
      s.wantsInSince = null;
      const ms = (x: number): number => Math.round(x * 1000) / 1000;
      this.options.events.record('task.swapped-in', task.id, {
        waitedMs: a.waitedMs,
        swappedBytes: r.value.bytes,
        swapSeconds: seconds,
        gbps: r.value.gbps,
        // Time-sharing: the share of a turn the swaps took (hand-over wall, or swap-out + swap-in seconds, / quantum).
        ...(turn ? { lostShare: Math.round((lost / (this.options.settings.quantumMs / 1000)) * 10_000) / 10_000 } : {}),
        // Overlapped with the swap-outs that made its room: each side's seconds and the wall time.
        ...(handover !== null
          ? { handover: { from: handover.from, outSeconds: ms(handover.outSeconds), outWallSeconds: ms(handover.outWallSeconds), inSeconds: ms(handover.inSeconds), waitSeconds: ms(handover.waitSeconds), wallSeconds: ms(handover.wallSeconds) } }
          : {}),
      });
      this.options.log.info({ task: task.id, waitedMs: a.waitedMs, seconds, handover }, 'overcommit: slice swapped in');
    }
    this.soon();
  }

  private wantsIn(id: string): void {
    const s = this.seen.get(id);
    if (s === undefined || s.wantsInSince !== null) return;
    // It may come with the swap-out's answer, before `out` is recorded: kept, heard once out.
    if (s.out === null) {
      s.wantsInSince = this.options.now();
      return;
    }
    s.wantsInSince = this.options.now();
    s.lastActiveAt = s.wantsInSince; // it launched
    this.options.events.record('task.wants-in', id, {});
    this.soon();
  }
}
