/**
 * The daemon's end of `gpushare-exec --spawner` (native/exec/spawner.h: the protocol, and why a
 * process of its own: Node's spawn forks the whole daemon and waits for the exec on its event
 * loop, milliseconds per task). Requests go down its stdin; it answers each with the pid and
 * start time (or where and why it failed), and reports every exit of what it started.
 *
 * Should it die while the daemon lives, the requests it had not answered have an unknown
 * outcome (`SpawnerLostError`: the caller asks the launch claim, as after a daemon crash), its
 * children are no longer reported (`onLost`: watch them by pid), and the next request starts a
 * new one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { signalName } from './proc.js';

export interface SpawnRequest {
  /** The program (absolute path) and its arguments. */
  readonly argv: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  /** '' keeps the spawner's own. */
  readonly cwd: string;
  /** Appended to (created 0600, its directory 0700 when missing); '' is /dev/null. */
  readonly stdout: string;
  readonly stderr: string;
  /** The user and group the program runs as; absent: the spawner's (the daemon's). */
  readonly user?: { readonly uid: number; readonly gid: number } | undefined;
}

export interface Spawned {
  readonly pid: number;
  /** /proc/PID/stat's start time (clock ticks since boot): with the pid, names the process forever. */
  readonly startTime: number;
}

/** How a spawned process ended, as waitpid saw it. */
export interface SpawnedExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** Where a start failed (native/exec/spawner.h SPAWN_STEP_*, in order from 1). */
export type SpawnStep = 'request' | 'fork' | 'stdout' | 'stderr' | 'cwd' | 'user' | 'exec';
const STEPS: readonly SpawnStep[] = ['request', 'fork', 'stdout', 'stderr', 'cwd', 'user', 'exec'];
const STEP_TEXT: Record<SpawnStep, string> = {
  request: 'the spawn request',
  fork: 'fork',
  stdout: 'opening its stdout log',
  stderr: 'opening its stderr log',
  cwd: 'entering its working directory',
  user: 'taking its user',
  exec: 'exec',
};

/** The program never ran: `step` says where starting it failed, `code` (an errno name) why. */
export class SpawnError extends Error {
  constructor(
    readonly step: SpawnStep,
    readonly errno: number,
    readonly code: string,
  ) {
    super(`${STEP_TEXT[step]} failed: ${code}`);
  }
}

/** The spawner died before answering: whether the program was started is unknown. */
export class SpawnerLostError extends Error {}

/** Spawners lost in a row, without an answer, after which starts are refused for BROKEN_PAUSE_MS. */
const MAX_LOSSES = 3;
const BROKEN_PAUSE_MS = 10_000;
const HEADER = 24;
const REPLY = 24;
const STARTED = 0x50; // 'P'
const FAILED = 0x46; // 'F'
const EXITED = 0x58; // 'X'
const OP_SPAWN = 0x53; // 'S'

/**
 * The most exits reported in one turn of the event loop (flushExits). Each costs the daemon
 * about 0.2 ms (its status file read, its `ended` commit's share, its cgroup and directory
 * handed to the thread pool), so 32 hold the loop for about 6 ms; the rest wait a turn, behind
 * the requests read meanwhile.
 */
export const MAX_EXITS_PER_TURN = 32;

interface Pending {
  readonly resolve: (s: Spawned) => void;
  readonly reject: (e: Error) => void;
  /** `run`'s: told of the exit instead of `onExit`. */
  readonly exited?: (exit: SpawnedExit) => void;
}

export class Spawner {
  private child: ChildProcess | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextTag = 1;
  private partial: Buffer = Buffer.alloc(0);
  private closed = false;
  /** Started and not yet ended, by pid: its start time (an exit names its process by both), and who waits for its end. */
  private readonly running = new Map<number, { startTime: number; exited: ((exit: SpawnedExit) => void) | undefined }>();
  private exits: { pid: number; startTime: number; exit: SpawnedExit; exited: ((exit: SpawnedExit) => void) | undefined }[] = [];
  /** Spawners lost in a row without an answer from any, and the last loss. */
  private losses = 0;
  private lastLoss: { readonly at: number; readonly why: string } | null = null;

  constructor(
    private readonly execPath: string,
    private readonly handlers: {
      /** Runs the exits reported in one turn (onExit for each); the daemon's: one transaction. */
      readonly batch?: (fn: () => void) => void;
      /**
       * A process started here ended (`startTime` as its start reported it). Called on a later
       * turn of the event loop than its start's answer, so whoever awaits the start has seen it.
       */
      readonly onExit: (pid: number, startTime: number, exit: SpawnedExit) => void;
      /** The spawner died: the processes it started are no longer reported. */
      readonly onLost: (why: string) => void;
      /**
       * A new spawner runs as `pid` and has been sent nothing yet: the daemon moves it into the
       * tasks' CPU group here (task-cpu.ts), so everything it starts is inside. A throw is
       * reported through `onPlaceFailed` and the spawner runs on where it is.
       */
      readonly onStart?: (pid: number) => void;
      readonly onPlaceFailed?: (err: unknown) => void;
    },
  ) {}

  spawn(request: SpawnRequest): Promise<Spawned> {
    return this.send(request);
  }

  /** Starts a program and waits for it to end (its exit goes to the caller, not to `onExit`). */
  run(request: SpawnRequest): Promise<SpawnedExit> {
    return new Promise((resolve, reject) => {
      this.send(request, resolve).catch(reject);
    });
  }

  private send(request: SpawnRequest, exited?: (exit: SpawnedExit) => void): Promise<Spawned> {
    if (this.closed) return Promise.reject(new SpawnerLostError('the spawner is closed'));
    // One that keeps dying before it answers anything is broken (a stale binary that does not
    // know --spawner, say): starts fail, saying so, rather than retry forever; it is tried
    // again after a pause.
    if (this.child === null && this.losses >= MAX_LOSSES && this.lastLoss !== null && performance.now() - this.lastLoss.at < BROKEN_PAUSE_MS) {
      return Promise.reject(new SpawnError('fork', 0, `the spawner ${this.execPath} died ${this.losses} times without answering (last: ${this.lastLoss.why}); starts are refused for ${BROKEN_PAUSE_MS / 1000} s after that`));
    }
    const child = this.child ?? this.start();
    const tag = this.nextTag;
    this.nextTag = this.nextTag >= 0xffffffff ? 1 : this.nextTag + 1;
    const promise = new Promise<Spawned>((resolve, reject) => this.pending.set(tag, exited === undefined ? { resolve, reject } : { resolve, reject, exited }));
    child.stdin?.write(encodeRequest(tag, request));
    return promise;
  }

  /** Ends the spawner; what it started runs on. Unanswered requests fail as lost. */
  close(): void {
    this.closed = true;
    const child = this.child;
    this.child = null;
    child?.stdin?.end();
    this.failPending('the daemon is closing');
  }

  private start(): ChildProcess {
    // The daemon's session and process group, not a session of its own: with the kernel's
    // autogroup scheduling a session of its own halved the starts a second here (the spawner
    // ran as its own scheduling group). A terminal's ^C reaches it, and it ignores it
    // (spawner.c): it ends when the daemon does.
    const child = spawn(this.execPath, ['--spawner'], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
    this.child = child;
    if (child.pid !== undefined && this.handlers.onStart !== undefined) {
      try {
        this.handlers.onStart(child.pid);
      } catch (err) {
        this.handlers.onPlaceFailed?.(err);
      }
    }
    this.partial = Buffer.alloc(0);
    child.stdout?.on('data', (chunk: Buffer) => this.read(chunk));
    // Its stdin is a pipe: a write after it died is an EPIPE, reported through 'exit' below.
    child.stdin?.on('error', () => undefined);
    // It never ran (Node could not spawn it): nothing was started, so its requests failed.
    child.once('error', (err) => this.neverRan(child, err as NodeJS.ErrnoException));
    // 'close', not 'exit': the answers still in its stdout pipe are read first.
    child.once('close', (code, signal) => this.lost(child, signal !== null ? `killed by ${signal}` : `exited with status ${code}`));
    // Neither it nor its pipes keep the daemon's process alive.
    child.unref();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    return child;
  }

  /** Exits go out after the starts answered beside them have been awaited (see onExit). */
  private exitLater(e: { pid: number; startTime: number; exit: SpawnedExit; exited: ((exit: SpawnedExit) => void) | undefined }): void {
    this.exits.push(e);
    if (this.exits.length > 1) return;
    setImmediate(() => this.flushExits());
  }

  /**
   * Reports the exits read so far, at most MAX_EXITS_PER_TURN of them (in the order they came)
   * and the rest on the next turns, each turn its own batch; `all`: every one now (the spawner
   * is lost). Short tasks end in bursts (their processes get the CPU together), and one batch of
   * a few hundred ends held the event loop for tens of ms, every request behind it.
   */
  private flushExits(all = false): void {
    const exits = all ? this.exits.splice(0) : this.exits.splice(0, MAX_EXITS_PER_TURN);
    if (this.exits.length > 0) setImmediate(() => this.flushExits());
    if (this.closed || exits.length === 0) return; // closed: the next daemon finds these ends from their status files
    const report = (): void => {
      for (const x of exits) {
        try {
          if (x.exited !== undefined) x.exited(x.exit);
          else this.handlers.onExit(x.pid, x.startTime, x.exit);
        } catch (err) {
          // One exit's handler failing must not lose the others' (nor, in a batch, roll them back).
          process.emitWarning(`gpushare: handling the exit of pid ${x.pid} failed: ${err instanceof Error ? err.message : String(err)}`);
        }
      }
    };
    if (this.handlers.batch) this.handlers.batch(report);
    else report();
  }

  private neverRan(child: ChildProcess, err: NodeJS.ErrnoException): void {
    if (this.child !== child) return;
    this.child = null;
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new SpawnError('fork', typeof err.errno === 'number' ? -err.errno : 0, `${err.code ?? 'error'} (the spawner ${this.execPath} could not be started: ${err.message})`));
  }

  private lost(child: ChildProcess, why: string): void {
    if (this.child !== child) return;
    this.child = null;
    this.losses += 1;
    this.lastLoss = { at: performance.now(), why };
    // Exits it reported before it died still count: delivered now, while their tasks are watched for them.
    this.flushExits(true);
    // Who waits for a program's end (run) hears of no end it could report: an unknown one.
    for (const r of this.running.values()) r.exited?.({ code: null, signal: null });
    this.running.clear();
    this.failPending(`the spawner ${why}`);
    this.handlers.onLost(why);
  }

  private failPending(why: string): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) p.reject(new SpawnerLostError(why));
  }

  private read(chunk: Buffer): void {
    const data = this.partial.length === 0 ? chunk : Buffer.concat([this.partial, chunk]);
    let at = 0;
    if (data.length >= REPLY) this.losses = 0;
    for (; at + REPLY <= data.length; at += REPLY) {
      const kind = data.readUInt32LE(at);
      const tag = data.readUInt32LE(at + 4);
      const pid = data.readInt32LE(at + 8);
      const value = data.readInt32LE(at + 12);
      const extra = Number(data.readBigUInt64LE(at + 16));
      if (kind === EXITED) {
        const started = this.running.get(pid);
        this.running.delete(pid);
        if (started !== undefined) this.exitLater({ pid, startTime: started.startTime, exit: decodeWaitStatus(value), exited: started.exited });
        continue;
      }
      const p = this.pending.get(tag);
      if (kind === STARTED) this.running.set(pid, { startTime: extra, exited: p?.exited });
      if (p === undefined) continue;
      this.pending.delete(tag);
      // Started, but its start time unreadable: which process it is stays unknown (its claim says).
      if (kind === STARTED && extra === 0) p.reject(new SpawnerLostError(`the start time of pid ${pid} could not be read`));
      else if (kind === STARTED) p.resolve({ pid, startTime: extra });
      else if (kind === FAILED) p.reject(new SpawnError(STEPS[extra - 1] ?? 'request', value, errnoName(value)));
    }
    this.partial = at === data.length ? Buffer.alloc(0) : data.subarray(at);
  }
}

/** The request as native/exec/spawner.h lays it out (host byte order: x86-64 and arm64 are little-endian). */
export function encodeRequest(tag: number, r: SpawnRequest): Buffer {
  const env = Object.entries(r.env).map(([k, v]) => `${k}=${v}`);
  const strings = [r.stdout, r.stderr, r.cwd, ...r.argv, ...env];
  let size = HEADER;
  for (const s of strings) size += Buffer.byteLength(s) + 1;
  const buf = Buffer.alloc(4 + size);
  buf.writeUInt32LE(size, 0);
  buf.writeUInt8(OP_SPAWN, 4);
  buf.writeUInt32LE(tag, 8);
  buf.writeInt32LE(r.user?.uid ?? -1, 12);
  buf.writeInt32LE(r.user?.gid ?? -1, 16);
  buf.writeUInt32LE(r.argv.length, 20);
  buf.writeUInt32LE(env.length, 24);
  let at = 4 + HEADER;
  for (const s of strings) {
    at += buf.write(s, at);
    at += 1; // the NUL Buffer.alloc left there
  }
  return buf;
}

/** A raw waitpid status as Node reports a child's exit. */
export function decodeWaitStatus(status: number): SpawnedExit {
  const low = status & 0x7f;
  if (low === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: signalName(low) };
}

function errnoName(errno: number): string {
  for (const [name, n] of Object.entries(constants.errno)) if (n === errno) return name;
  return `errno ${errno}`;
}
