/**
 * Suspending a task by slice swap (issue 22): libgpushare moves each CUDA process's GPU memory
 * to pinned host memory and back under the same addresses, asked through its control socket
 * (native/shim/SWAP.md), `<dir>/<pid>.sock` in the directory the daemon gives the task as
 * GPUSHARE_SWAP. Suspend: every CUDA process of the group swaps out, then the group gets
 * SIGSTOP (as the checkpoint path does: its CPU threads stop too). Resume: SIGCONT, then every
 * process swaps in; until it has, the library holds the program's launches and copies.
 *
 * The connections that swapped a task out stay open until its swap-in: the library swaps a
 * process back in by itself when the connection that swapped it out closes, so a daemon that
 * dies leaves no task stranded on the host (it resumes at its SIGCONT). A task the library
 * cannot swap (a process without a socket: no libgpushare, swap off, or no swappable memory
 * yet; a refusal such as no VMM or too little host memory) is answered `unavailable` or
 * `refused` with the reason, and nothing is left changed: the caller falls back to the
 * checkpoint API.
 */
import { existsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { groupMembers, mayUseCudaDriver, readMappedLibraries, signalGroup, type MappedLibraries } from './proc.js';

/** Swap only when at most 1/8 of the task's device memory (contexts aside) would stay on the GPU. */
const RESIDENT_MAX_PARTS = 8;
const SIGSTOP = 19;
const SIGCONT = 18;

/** One process's answer (SWAP.md, "The control socket"). */
export type SwapAnswer =
  | { readonly ok: true; readonly pid: number; readonly bytes: number; readonly residentBytes: number; readonly seconds: number; readonly pinSeconds: number; readonly drainSeconds: number; readonly pinnedBytes: number; readonly devices: readonly string[]; readonly waitSeconds: number }
  | { readonly ok: false; readonly pid: number; readonly code: string; readonly message: string };

/** A swap of the whole group: the bytes moved and how fast, as the daemon timed it (request to every answer). */
export interface SwapOutcome {
  readonly path: 'swap';
  readonly bytes: number;
  /** Device memory the swap left in place (allocations the library cannot swap; contexts aside). */
  readonly residentBytes: number;
  readonly seconds: number;
  /** Bytes per second / 1e9; null when nothing moved. */
  readonly gbps: number | null;
  readonly processes: number;
  /** The GPUs (UUIDs) the swapped memory is on after the operation, as the library's driver names them: after a move, the new ones. */
  readonly devices: readonly string[];
  /** A swap-in asked to wait for room (a hand-over): of `seconds`, the longest any process waited for the GPU's memory. */
  readonly waitSeconds?: number;
}

export type SwapResult =
  | { readonly ok: true; readonly value: SwapOutcome }
  /** `gone`: a process of the task went away during the swap (killed: its memory went with it). */
  | {
      readonly ok: false;
      readonly code: 'swap-unavailable' | 'swap-refused';
      readonly message: string;
      readonly gone?: boolean;
      /** Where a process refused: the library's own code (SWAP.md), e.g. `exported` while another process maps its memory. */
      readonly libraryCode?: string;
    };

/**
 * Whether `<dir>/<pid>.sock` fits a Unix socket address (sun_path: 108 bytes with its NUL on
 * Linux); the library cannot listen on a longer one (swap_ctl.c), so such a process never gets
 * a control socket.
 */
export function socketPathFits(dir: string, pid: number): boolean {
  return Buffer.byteLength(join(dir, `${pid}.sock`)) < SUN_PATH_BYTES;
}

const SUN_PATH_BYTES = 108;

/** What pending reads of /proc and the swap directory (tests pass their own). */
export interface ProcView {
  members(pgid: number): readonly number[];
  libraries(pid: number): MappedLibraries | 'gone' | 'unreadable';
  exists(path: string): boolean;
}

const liveProc: ProcView = { members: groupMembers, libraries: (pid) => readMappedLibraries(pid), exists: existsSync };

/** The directory of a task's control sockets: beside its region (GPUSHARE_SWAP). */
export function swapDirFor(regionPath: string): string {
  return join(dirname(regionPath), 'swap');
}

/** One control connection: a command out, its JSON line back. */
class Control {
  private buffered = '';
  private waiting: ((line: string | null) => void) | null = null;
  private closed = false;
  /** One command at a time on a connection: the next is asked once the last is answered. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      this.deliver();
    });
    const end = (): void => {
      if (!this.closed) this.onClose?.();
      this.closed = true;
      this.deliver();
    };
    socket.on('close', end);
    socket.on('error', end);
  }

  static open(path: string): Promise<Control | null> {
    return new Promise((resolve) => {
      const s = connect(path);
      s.once('connect', () => resolve(new Control(s)));
      s.once('error', () => resolve(null));
    });
  }

  /** Hears the library's unasked lines (wants-in, wants-room: SWAP.md, "The control socket"), with their fields. */
  onEvent: ((event: string, fields: Record<string, unknown>) => void) | null = null;
  /** Hears the connection end (the process went away). */
  onClose: (() => void) | null = null;

  private deliver(): void {
    for (;;) {
      const nl = this.buffered.indexOf('\n');
      // Unasked lines (before or after an answer, in the same chunk or not): never inside one.
      if (nl >= 0 && this.buffered.startsWith('{"event":')) {
        const line = this.buffered.slice(0, nl);
        const event = /^\{"event":"([a-z-]+)"/.exec(line)?.[1];
        this.buffered = this.buffered.slice(nl + 1);
        let fields: Record<string, unknown> = {};
        try {
          fields = JSON.parse(line) as Record<string, unknown>;
        } catch {
          // the event's name is enough for wants-in; a wants-room without its bytes asks for none
        }
        if (event !== undefined) this.onEvent?.(event, fields);
        continue;
      }
      if (!this.waiting || (nl < 0 && !this.closed)) return;
      const w = this.waiting;
      this.waiting = null;
      if (nl < 0) return w(null);
      const line = this.buffered.slice(0, nl);
      this.buffered = this.buffered.slice(nl + 1);
      w(line);
    }
  }

  ask(pid: number, command: string): Promise<SwapAnswer> {
    const next = this.queue.then(() => this.askNow(pid, command));
    this.queue = next;
    return next;
  }

  private askNow(pid: number, command: string): Promise<SwapAnswer> {
    return new Promise((resolve) => {
      this.waiting = (line) => {
        if (line === null) return resolve({ ok: false, pid, code: 'gone', message: `process ${pid} went away during the swap` });
        try {
          const a = JSON.parse(line) as Record<string, unknown>;
          if (a['ok'] === true) resolve({ ok: true, pid, bytes: Number(a['bytes']), residentBytes: Number(a['residentBytes'] ?? 0), seconds: Number(a['seconds']), pinSeconds: Number(a['pinSeconds']), drainSeconds: Number(a['drainSeconds']), pinnedBytes: Number(a['pinnedBytes']), devices: typeof a['devices'] === 'string' && a['devices'] !== '' ? a['devices'].split(',') : [], waitSeconds: Number(a['waitSeconds'] ?? 0) });
          else resolve({ ok: false, pid, code: String(a['code']), message: String(a['message']) });
        } catch {
          resolve({ ok: false, pid, code: 'protocol', message: `process ${pid} answered something other than a swap answer` });
        }
      };
      if (this.closed) this.deliver();
      else this.socket.write(`${command}\n`);
      this.deliver();
    });
  }

  close(): void {
    this.socket.destroy();
  }
}

interface Held {
  readonly pid: number;
  readonly control: Control;
}

function outcome(answers: readonly SwapAnswer[], seconds: number): SwapOutcome {
  const bytes = answers.reduce((sum, a) => sum + (a.ok ? a.bytes : 0), 0);
  const residentBytes = answers.reduce((sum, a) => sum + (a.ok ? a.residentBytes : 0), 0);
  const waitSeconds = answers.reduce((most, a) => Math.max(most, a.ok ? a.waitSeconds : 0), 0);
  return { path: 'swap', bytes, residentBytes, seconds, gbps: bytes > 0 && seconds > 0 ? Math.round((bytes / seconds / 1e9) * 100) / 100 : null, processes: answers.length, devices: [...new Set(answers.flatMap((a) => (a.ok ? a.devices : [])))], waitSeconds };
}

/**
 * The GPUs (UUIDs) the group's swappable memory is on, as each process's library sees its
 * devices now (`status`); empty when no process answers. After a restart in the middle of a
 * move this tells where the task is: a restore onto the new GPUs renames its device ordinals.
 */
export async function swapDevices(dir: string, pgid: number): Promise<string[]> {
  const found = new Set<string>();
  for (const pid of groupMembers(pgid).filter(mayUseCudaDriver)) {
    const control = existsSync(join(dir, `${pid}.sock`)) ? await Control.open(join(dir, `${pid}.sock`)) : null;
    if (control === null) continue;
    const a = await control.ask(pid, 'status');
    control.close();
    if (a.ok) for (const d of a.devices) found.add(d);
  }
  return [...found];
}

/** The daemon's swaps in progress or done: the connections of each swapped-out task. */
export class SwapSessions {
  private readonly held = new Map<string, readonly Held[]>();
  /** Memory overcommit's watching connections per task and pid (null while one connects). */
  private readonly watching = new Map<string, Map<number, Control | null>>();

  /** Whether `taskId` is swapped out by this daemon (its resume goes through `in`). */
  has(taskId: string): boolean {
    return this.held.has(taskId);
  }

  /**
   * Swaps every CUDA process of the group out, then stops the group; on refusal nothing is left
   * changed. `park` (memory overcommit, residency-shell.ts): the group is not stopped, and
   * `onWantsIn` hears when one of its processes waits to come back in.
   */
  async out(taskId: string, dir: string, pgid: number, park?: { readonly onWantsIn: () => void }): Promise<SwapResult> {
    const pids = groupMembers(pgid).filter(mayUseCudaDriver);
    if (pids.length === 0) return { ok: false, code: 'swap-unavailable', message: 'the task has no CUDA process' };
    const missing = pids.filter((pid) => !existsSync(join(dir, `${pid}.sock`)));
    if (missing.length > 0) return { ok: false, code: 'swap-unavailable', message: `process ${missing.join(', ')} has no swap control (libgpushare not loaded, swap off, or no swappable GPU memory)` };
    const started = performance.now();
    const opened = await Promise.all(pids.map(async (pid) => ({ pid, control: await Control.open(join(dir, `${pid}.sock`)) })));
    const held = opened.filter((o): o is Held => o.control !== null);
    if (held.length < opened.length) {
      for (const h of held) h.control.close();
      return { ok: false, code: 'swap-unavailable', message: 'a process of the task does not answer on its swap control socket' };
    }
    // Worth it only when it frees the task's memory: most of it swappable (else the checkpoint API).
    const status = await Promise.all(held.map((h) => h.control.ask(h.pid, 'status')));
    const swappable = status.reduce((sum, a) => sum + (a.ok ? a.bytes : 0), 0);
    const resident = status.reduce((sum, a) => sum + (a.ok ? a.residentBytes : 0), 0);
    if (status.some((a) => !a.ok) || swappable === 0 || resident * RESIDENT_MAX_PARTS > swappable + resident) {
      for (const h of held) h.control.close();
      return { ok: false, code: 'swap-unavailable', message: swappable === 0 ? 'the task has no swappable GPU memory' : `slice swap would leave ${resident} of its ${swappable + resident} bytes on the GPU` };
    }
    // Heard from before the swap-out's answer: a held thread's wants-in follows it at once.
    if (park) for (const h of held) h.control.onEvent = (e) => e === 'wants-in' && park.onWantsIn();
    const answers = await Promise.all(held.map((h) => h.control.ask(h.pid, 'out')));
    const refused = answers.find((a) => !a.ok);
    if (refused && !refused.ok) {
      // Back in where it went out; closing the connections would do it too, but this waits for it.
      await Promise.all(held.filter((_, i) => answers[i]?.ok === true).map((h) => h.control.ask(h.pid, 'in')));
      for (const h of held) h.control.close();
      return { ok: false, code: 'swap-refused', message: `process ${refused.pid}: ${refused.message} (${refused.code})`, gone: refused.code === 'gone', libraryCode: refused.code };
    }
    const seconds = (performance.now() - started) / 1000;
    this.held.set(taskId, held);
    if (!park) signalGroup(pgid, SIGSTOP);
    return { ok: true, value: outcome(answers, seconds) };
  }

  /**
   * Continues the group and swaps every process back in. A process the library already swapped
   * in (its connection was lost) counts as done; on another failure the group is stopped again
   * and stays swapped out (the caller retries later).
   */
  async in(taskId: string, pgid: number, parked = false, roomWaitMs = 0): Promise<SwapResult> {
    const held = this.held.get(taskId);
    if (!held) return { ok: false, code: 'swap-unavailable', message: 'the task was not swapped out by this daemon' };
    if (!parked) signalGroup(pgid, SIGCONT);
    const started = performance.now();
    // `in MS` (a hand-over): allocations the driver refuses for want of memory are tried again
    // until MS passes, while the outgoing slice releases its memory (SWAP.md, "Hand-over").
    const command = roomWaitMs > 0 ? `in ${Math.max(1, Math.round(roomWaitMs))}` : 'in';
    const answers = await Promise.all(held.map((h) => h.control.ask(h.pid, command)));
    const failed = answers.find((a) => !a.ok && a.code !== 'state' && a.code !== 'gone');
    if (failed && !failed.ok) {
      if (!parked) signalGroup(pgid, SIGSTOP);
      return { ok: false, code: 'swap-refused', message: `process ${failed.pid}: ${failed.message} (${failed.code})` };
    }
    this.drop(taskId);
    return { ok: true, value: outcome(answers, (performance.now() - started) / 1000) };
  }

  /**
   * Ends the waits for room of a swap-in asked with `roomWaitMs` (its hand-over's swap-out
   * failed: the room will not come): the swap-in is refused at once (`gpu-memory`) and the slice
   * stays out. On connections of their own: the task's are busy with the swap-in.
   */
  async stopIn(taskId: string, dir: string): Promise<void> {
    await Promise.all(
      (this.held.get(taskId) ?? []).map(async (h) => {
        const control = await Control.open(join(dir, `${h.pid}.sock`));
        if (control === null) return;
        await control.ask(h.pid, 'in-stop');
        control.close();
      }),
    );
  }

  /**
   * Pins the staging of every CUDA process of the group for what it holds now (`stage`), so a
   * later swap-out pins nothing (pinning costs about 0.5 s per GiB, issue 22); false when a
   * process refused or could not be asked. Memory overcommit stages its slices ahead.
   */
  static async stage(dir: string, pgid: number): Promise<boolean> {
    const pids = groupMembers(pgid).filter(mayUseCudaDriver);
    const answers = await Promise.all(
      pids.map(async (pid) => {
        const control = await Control.open(join(dir, `${pid}.sock`));
        if (control === null) return false;
        const a = await control.ask(pid, 'stage');
        control.close();
        return a.ok;
      }),
    );
    return pids.length > 0 && answers.every(Boolean);
  }

  /**
   * Whether the group cannot be swapped yet but its GPU memory is all counted: every CUDA
   * process without a control socket runs libgpushare (the socket opens at its first swappable
   * allocation, and one the driver refuses asks for room) and has not said it will not get one
   * (`<pid>.noswap`, written by the library when its socket cannot be made, SWAP.md), vacuously
   * so before any process maps the CUDA driver. Such a slice holds what its region says, not its
   * whole promise (residency.ts, ResidentSlice.pending). Fails closed: a process whose maps
   * cannot be read (a daemon that is not root, hidepid, a process that changed its credentials)
   * may use the GPU outside the library. An empty group stays pending (vacuously): it is a task
   * between its fork and its setsid, or ending, which counted at its promise re-opened the
   * overcommit-room race (issue 22), and it is never a group hidden from the daemon (root sees
   * every process; a daemon that is not root starts its tasks as its own user, whose processes
   * hidepid does not hide). How long a slice may stay pending is the caller's bound
   * (residency-shell.ts, PENDING_GRACE_MS). `proc` is for tests.
   */
  static pending(dir: string, pgid: number, proc: ProcView = liveProc): boolean {
    for (const pid of proc.members(pgid)) {
      const libs = proc.libraries(pid);
      if (libs === 'gone') continue;
      if (proc.exists(join(dir, `${pid}.sock`))) continue;
      if (libs === 'unreadable') return false;
      if (libs.cuda && (!libs.gpushare || !socketPathFits(dir, pid) || proc.exists(join(dir, `${pid}.noswap`)))) return false;
    }
    return true;
  }

  /** Whether every CUDA process of the group has a control socket (and there is one): the library can swap it. */
  static swappable(dir: string, pgid: number): boolean {
    const pids = groupMembers(pgid).filter(mayUseCudaDriver);
    return pids.length > 0 && pids.every((pid) => existsSync(join(dir, `${pid}.sock`)));
  }

  /**
   * Memory overcommit: a connection kept open to every CUDA process of the group that said
   * `watch`, on which the library says when the driver refused an allocation for want of GPU
   * memory (`wants-room`, with its bytes; SWAP.md "Waiting for room") and waits for `room` or
   * `no-room`. Processes already watched are left as they are; one that ends is forgotten.
   */
  async watch(taskId: string, dir: string, pgid: number, onWantsRoom: (pid: number, bytes: number) => void): Promise<void> {
    let mine = this.watching.get(taskId);
    if (mine === undefined) this.watching.set(taskId, (mine = new Map()));
    const fresh = groupMembers(pgid).filter((pid) => mayUseCudaDriver(pid) && !mine.has(pid) && existsSync(join(dir, `${pid}.sock`)));
    await Promise.all(
      fresh.map(async (pid) => {
        mine.set(pid, null); // taken: a second look while this one connects does not connect again
        const control = await Control.open(join(dir, `${pid}.sock`));
        if (control === null || this.watching.get(taskId) !== mine) {
          control?.close();
          mine.delete(pid);
          return;
        }
        control.onEvent = (e, f) => e === 'wants-room' && onWantsRoom(pid, Number(f['bytes'] ?? 0));
        control.onClose = () => mine.get(pid) === control && mine.delete(pid);
        mine.set(pid, control);
        const a = await control.ask(pid, 'watch');
        if (!a.ok) {
          control.close();
          mine.delete(pid);
        }
      }),
    );
  }

  /** Answers the waits for room of these processes of the task: room made (retry) or none (out of memory). */
  async answerRoom(taskId: string, pids: readonly number[], room: boolean): Promise<void> {
    const mine = this.watching.get(taskId);
    await Promise.all(pids.map(async (pid) => mine?.get(pid)?.ask(pid, room ? 'room' : 'no-room')));
  }

  /** Stops watching a task (it ended or left overcommit's hands): its watching connections close. */
  unwatch(taskId: string): void {
    for (const c of this.watching.get(taskId)?.values() ?? []) c?.close();
    this.watching.delete(taskId);
  }

  /** Forgets a task (it ended): its connections close. */
  drop(taskId: string): void {
    for (const h of this.held.get(taskId) ?? []) h.control.close();
    this.held.delete(taskId);
  }
}
