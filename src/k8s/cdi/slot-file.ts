/**
 * A small state file rewritten on a hot path (the device plugin's ledger on every Allocate, the
 * DRA plugin's checkpoint on every prepare and unprepare), written in place into one of two
 * slots instead of to a temporary file renamed over it.
 *
 * Why: on ext4 (`auto_da_alloc`, the default) a rename over an existing file starts the
 * writeback of the new file's blocks inside the rename, so every replace costs a disk
 * allocation and a queued write: 0.2-1 ms at the median and 3-12 ms at p99 on the development
 * VM's disk under load (docs/benchmarks.md, "Session 23"), against 0.01 / 0.06 ms for a write
 * into pages the file already has. Neither way is fsynced (the callers say why: their state is
 * trusted only within the boot that wrote it; `sync` adds an fdatasync, measured at 2.9-8.7 ms
 * p99 on the development VM in session 24: with it a prepare's p99 would pass its 5 ms budget). One writer per file: a lock
 * beside it (SlotFile). An older gpushare reads the slotted file as "not JSON" and refuses it:
 * writePlainLayout (`gpushare k8s downgrade-state`) is the way back (docs/kubernetes.md).
 *
 * Layout: the file is 2 x `cap` bytes (`cap` a power of two, >= 4 KiB); slot i starts at
 * i x cap with one header line `gpushare-slots 1 <seq> <length> <sha256 of the payload>\n`
 * followed by the payload. A write goes to the slot that does not hold the newest record, with
 * the next sequence number, in one pwrite; the reader takes the valid slot with the highest
 * sequence. A writer killed in the middle of a write tears only the slot it was writing, whose
 * hash then fails, and the other slot holds the previous record: the reader sees the old state
 * or the new one, never half of one, as with a rename. A record that does not fit a slot makes
 * the file again, larger (temporary file + rename, both slots holding the record): rare, the
 * slots double each time. A file of another layout (the plain JSON file renamed into place by
 * earlier versions) is read as it is, and replaced by the slotted layout at the first write.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, fdatasyncSync, fstatSync, ftruncateSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './write.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { tryLockExclusive } from '../../node/state-lock.js';

const MAGIC = 'gpushare-slots 1 ';
const MIN_CAP = 4096;
/** The longest header line: the magic, two integers, a 64-digit hash, spaces and the newline. */
const MAX_HEADER = MAGIC.length + 16 + 1 + 16 + 1 + 64 + 1;
/** The prefix of the temporary names (the same as cdi/write.ts's, so removeTemporaries removes a killed write's). */
const TEMP_MARK = '.gstmp-';

/** What a read found. */
export type SlotRead =
  | { readonly kind: 'absent' }
  /** The newest valid record's text. */
  | { readonly kind: 'slots'; readonly text: string; readonly seq: number }
  /** A file not in the slotted layout (an earlier version's plain file, or anything else): its whole text, for the caller to judge. */
  | { readonly kind: 'plain'; readonly text: string }
  /** The slotted layout with no valid slot (only a power loss, or a hand, can do that). */
  | { readonly kind: 'torn'; readonly why: string };

interface Slot {
  readonly seq: number;
  readonly text: string;
}

function record(seq: number, payload: Buffer): Buffer {
  const header = `${MAGIC}${seq} ${payload.length} ${createHash('sha256').update(payload).digest('hex')}\n`;
  return Buffer.concat([Buffer.from(header, 'latin1'), payload]);
}

/** The slot's record, or why it is not one. */
function parseSlot(bytes: Buffer): Slot | string {
  const nl = bytes.subarray(0, MAX_HEADER).indexOf(10);
  if (nl < 0) return 'no header line';
  const header = bytes.toString('latin1', 0, nl);
  if (!header.startsWith(MAGIC)) return 'no gpushare-slots header';
  const [seqText, lenText, hash] = header.slice(MAGIC.length).split(' ');
  const seq = Number(seqText);
  const len = Number(lenText);
  if (!/^\d+$/.test(seqText ?? '') || !/^\d+$/.test(lenText ?? '') || !/^[0-9a-f]{64}$/.test(hash ?? '')) return `a malformed header (${JSON.stringify(header)})`;
  if (nl + 1 + len > bytes.length) return `a payload of ${len} bytes past the slot's end`;
  const payload = bytes.subarray(nl + 1, nl + 1 + len);
  if (createHash('sha256').update(payload).digest('hex') !== hash) return 'a payload that does not match its hash (a torn write)';
  return { seq, text: payload.toString('utf8') };
}

function isSlotted(bytes: Buffer): boolean {
  const size = bytes.length;
  if (size < 2 * MIN_CAP || (size & (size - 1)) !== 0) return false;
  const cap = size / 2;
  return bytes.toString('latin1', 0, MAGIC.length) === MAGIC || bytes.toString('latin1', cap, cap + MAGIC.length) === MAGIC;
}

/** Reads a file's state without keeping it open. */
export function readSlotFile(path: string): SlotRead {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw e;
  }
  return decode(bytes).read;
}

function decode(bytes: Buffer): { read: SlotRead; newest: 0 | 1; seq: number; cap: number } {
  if (!isSlotted(bytes)) return { read: { kind: 'plain', text: bytes.toString('utf8') }, newest: 0, seq: 0, cap: 0 };
  const cap = bytes.length / 2;
  const slots = [parseSlot(bytes.subarray(0, cap)), parseSlot(bytes.subarray(cap))] as const;
  const valid = slots.map((s, i) => (typeof s === 'string' ? null : { ...s, i: i as 0 | 1 })).filter((s) => s !== null);
  const best = valid.reduce<(typeof valid)[number] | null>((a, b) => (a === null || b.seq > a.seq ? b : a), null);
  if (best === null) return { read: { kind: 'torn', why: `slot 0 has ${slots[0] as string}; slot 1 has ${slots[1] as string}` }, newest: 0, seq: 0, cap };
  return { read: { kind: 'slots', text: best.text, seq: best.seq }, newest: best.i, seq: best.seq, cap };
}

/** Options of a writer. */
export interface SlotFileOptions {
  /** The file's mode when made. */
  readonly mode?: number;
  /**
   * fdatasync after each write (and the directory after a remake): the write survives a power
   * loss. Off by default: the callers' state is trusted only within the boot that wrote it, and
   * what a flush costs is in docs/benchmarks.md ("Session 24: the slot file's lock and fdatasync").
   */
  readonly sync?: boolean;
}

/** The lock beside a slot file: `<path>.lock`, never removed (removing it would let two writers lock two different files). */
export const lockPathFor = (path: string): string => `${path}.lock`;

/**
 * The writer: one per file, keeping the file open. `read()` first (it takes the writer's lock
 * and learns the newest slot); `write(text)` then costs one stat and one pwrite while the
 * record fits.
 *
 * One writer at a time: flock(2) LOCK_EX on `<path>.lock`, taken by `read()` (or the first
 * write) and held until `close()`. Two writers (an agent restarted while the old one still
 * runs, two agents on one node by mistake) would each write the slot the other thinks is free
 * and interleave their sequence numbers, so the second is refused (GS_ERR_CONFLICT, naming the
 * holder's pid from the lock file's text, which decides nothing). flock, as the daemon's state
 * lock (node/state-lock.ts), rather than an O_EXCL pid file: the kernel drops it however the
 * holder dies, so a killed agent never blocks the next and no stale lock needs judging; Node
 * opens files close-on-exec, so no child inherits it. Readers (`readSlotFile`) take no lock:
 * a slot is whole or fails its hash.
 */
export class SlotFile {
  private fd: number | null = null;
  private lockFd: number | null = null;
  private ino = -1;
  private cap = 0;
  private seq = 0;
  private newest: 0 | 1 = 0;
  private scratch: Buffer | null = null;
  private readonly mode: number;
  private readonly sync: boolean;

  constructor(
    readonly path: string,
    options: SlotFileOptions | number = {},
  ) {
    const o = typeof options === 'number' ? { mode: options } : options;
    this.mode = o.mode ?? 0o600;
    this.sync = o.sync ?? false;
  }

  /** The file's state (and the writer's place in it); throws GS_ERR_CONFLICT when another writer holds the file. */
  read(): SlotRead {
    this.closeData();
    this.lock();
    let bytes: Buffer;
    try {
      bytes = readFileSync(this.path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
      throw e;
    }
    const d = decode(bytes);
    this.seq = d.seq;
    this.newest = d.newest;
    if (d.read.kind === 'slots') {
      // Written in place from here on, unless the file was replaced between the read and the open.
      const fd = openSync(this.path, 'r+');
      const st = fstatSync(fd);
      if (st.size === 2 * d.cap) {
        this.fd = fd;
        this.ino = st.ino;
        this.cap = d.cap;
      } else closeSync(fd);
    }
    return d.read;
  }

  /**
   * Makes `text` the file's state: in place while it fits a slot and the path is still the file
   * this writer has open, else by making the file again. Throws on a failed write; the file then
   * still holds the previous state (the newest slot is never the one written). `text` may be
   * given as its UTF-8 bytes in pieces, written one after another (the device plugin's ledger
   * keeps each entry's bytes, session 26): no string of the whole is made.
   */
  write(text: string | readonly Uint8Array[]): void {
    this.lock();
    const seq = this.seq + 1;
    if (this.fd !== null) {
      // In place: the record is built in a buffer kept for the purpose (the payload copied once
      // into it, the header before it), not in new buffers per write: session 26 measured a 20 KB
      // record's Buffer.from at 0.06-0.29 ms p99 against 0.001-0.003 ms into a kept buffer on the
      // development VM, and its two 20 KB allocations a write (encoding, concatenation) as the
      // device plugin's ledger garbage on Allocate's path. The bytes are the same record().
      const size = typeof text === 'string' ? Buffer.byteLength(text, 'utf8') : text.reduce((n, b) => n + b.length, 0);
      if (size <= this.cap) {
        const scratch = this.scratchFor(MAX_HEADER + this.cap);
        if (typeof text === 'string') scratch.write(text, MAX_HEADER, size, 'utf8');
        else {
          let at = MAX_HEADER;
          for (const b of text) {
            scratch.set(b, at);
            at += b.length;
          }
        }
        const header = `${MAGIC}${seq} ${size} ${createHash('sha256').update(scratch.subarray(MAX_HEADER, MAX_HEADER + size)).digest('hex')}\n`;
        const start = MAX_HEADER - header.length;
        const length = header.length + size;
        if (length <= this.cap && this.stillOurs()) {
          scratch.write(header, start, 'latin1');
          const slot = this.newest === 0 ? 1 : 0;
          const n = writeSync(this.fd, scratch, start, length, slot * this.cap);
          if (n !== length) throw new Error(`${this.path}: wrote ${n} of ${length} bytes`);
          if (this.sync) fdatasyncSync(this.fd);
          this.seq = seq;
          this.newest = slot;
          return;
        }
      }
    }
    this.remake(seq, record(seq, typeof text === 'string' ? Buffer.from(text, 'utf8') : Buffer.concat(text)));
  }

  /** The kept buffer in-place writes build their record in, at least `size` bytes. */
  private scratchFor(size: number): Buffer {
    if (this.scratch === null || this.scratch.length < size) this.scratch = Buffer.allocUnsafeSlow(size);
    return this.scratch;
  }

  /** Lets the file and its lock go; a later read or write takes them again. */
  close(): void {
    this.closeData();
    if (this.lockFd !== null) closeSync(this.lockFd);
    this.lockFd = null;
  }

  private closeData(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
    this.cap = 0;
  }

  /** Takes the writer's lock (once), or throws GS_ERR_CONFLICT naming its holder. */
  private lock(): void {
    if (this.lockFd !== null) return;
    const path = lockPathFor(this.path);
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, this.mode);
    let taken: boolean;
    try {
      taken = tryLockExclusive(fd, path);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    if (!taken) {
      closeSync(fd);
      let holder = 'another process (starting: its pid is not written yet)';
      try {
        const pid = /^pid (\d+)/.exec(readFileSync(path, 'utf8'))?.[1];
        if (pid !== undefined) holder = `process ${pid}${Number(pid) === process.pid ? ' (this one: a second writer in one process)' : ''}`;
      } catch {
        // named as unknown
      }
      throw new GsError(ErrorCodes.conflict, `${this.path} is being written by ${holder}, which holds ${path}: one writer per file (is another gpushare agent running on this node, or the old one still stopping?); stop it first`);
    }
    const text = Buffer.from(`pid ${process.pid}\n`);
    try {
      writeSync(fd, text, 0, text.length, 0);
      ftruncateSync(fd, text.length);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
    this.lockFd = fd;
  }

  private stillOurs(): boolean {
    try {
      const st = statSync(this.path);
      return st.ino === this.ino && st.size === 2 * this.cap;
    } catch {
      return false;
    }
  }

  /** The whole file written anew (both slots holding the record) to a temporary file and renamed over the path. */
  private remake(seq: number, bytes: Buffer): void {
    let cap = MIN_CAP;
    while (cap < 2 * bytes.length) cap *= 2;
    const file = Buffer.alloc(2 * cap);
    bytes.copy(file, 0);
    bytes.copy(file, cap);
    const dir = this.path.slice(0, this.path.lastIndexOf('/')) || '/';
    const temp = join(dir, `${TEMP_MARK}${process.pid}-${this.path.slice(dir.length + 1)}`);
    const fd = openSync(temp, 'w+', this.mode);
    try {
      const n = writeSync(fd, file, 0, file.length, 0);
      if (n !== file.length) throw new Error(`${temp}: wrote ${n} of ${file.length} bytes`);
      if (this.sync) fdatasyncSync(fd);
      renameSync(temp, this.path);
      if (this.sync) syncDir(dir);
    } catch (e) {
      closeSync(fd);
      rmSync(temp, { force: true });
      throw e;
    }
    this.closeData();
    this.fd = fd;
    this.ino = fstatSync(fd).ino;
    this.cap = cap;
    this.seq = seq;
    this.newest = 1;
  }
}

/** fsync of a directory: a rename in it survives a power loss. */
function syncDir(dir: string): void {
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Rewrites a slot file in the plain layout (its newest record's text alone, renamed into place
 * and fsynced): the layout gpushare before the slots (base/session23 and earlier) reads and
 * writes, for a downgrade (`gpushare k8s downgrade-state`, docs/kubernetes.md, "State,
 * idempotence, restarts"). The record's text is that layout's whole file already (the slots
 * changed the container, not the document). Offline only: it takes the writer's lock, so a
 * running agent makes it refuse (GS_ERR_CONFLICT). `plain`: the file was in the plain layout
 * already, and is left as it is. Absent (GS_ERR_NOT_FOUND) or torn (GS_ERR_CONFLICT): nothing changed.
 */
export function writePlainLayout(path: string, mode = 0o600): 'written' | 'plain' {
  const f = new SlotFile(path, { mode });
  try {
    const read = f.read();
    if (read.kind === 'absent') throw new GsError(ErrorCodes.notFound, `${path}: no such file`);
    if (read.kind === 'torn') throw new GsError(ErrorCodes.conflict, `${path} has no whole record (${read.why}); nothing changed`);
    if (read.kind === 'plain') return 'plain';
    writeFileAtomic(path, read.text, mode, true);
    return 'written';
  } finally {
    f.close();
  }
}
