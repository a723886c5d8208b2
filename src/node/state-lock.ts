/**
 * One daemon per state directory. Two daemons on one directory would both adopt the same tasks,
 * signal them, and write the same database; the second one to start refuses instead, naming the
 * first, before it opens anything of the directory's (database, sockets, regions).
 *
 * The lock is flock(2) on `<stateDir>/daemon.lock`, held by an open file of this process. Chosen
 * over a pid file checked by pid and start time because the kernel drops it when the process
 * dies, however it dies (SIGKILL, the OOM killer), so a crashed daemon never blocks the next
 * start and nothing has to judge whether a pid was reused; and taking it is one atomic call,
 * so two daemons starting at the same moment cannot both win. Node opens every file
 * close-on-exec, so the tasks the daemon starts (which outlive it on purpose) never inherit the
 * descriptor and never hold the lock. The file's text (pid, addresses, since when) only names
 * the holder in the refusal; it is never trusted to decide anything.
 */
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import koffi from 'koffi';
import { ErrorCodes, GsError } from '../domain/index.js';

/** What the lock file says about the daemon holding it. */
export interface LockHolder {
  readonly pid: number;
  /** Where it listens, as `--host` would name it (as configured until it listens, then actual). */
  readonly addresses: readonly string[];
  /** When it took the lock (ms since the epoch). */
  readonly since: number;
}

export interface StateLock {
  readonly path: string;
  /** Rewrites the holder's addresses (once the listeners are up and TCP ports are known). */
  describe(addresses: readonly string[]): void;
  /** Drops the lock; the file stays (removing it would let two daemons lock two different files). */
  release(): void;
}

export const LOCK_FILE = 'daemon.lock';

/** The one libc call needed, bound on first use (a daemon takes one lock in its life). */
type Flock = (fd: number, operation: number) => number;
const LOCK_EX = 2;
const LOCK_NB = 4;
let flockCall: Flock | null = null;

function flock(): Flock {
  flockCall ??= koffi.load('libc.so.6').func('int flock(int fd, int operation)') as Flock;
  return flockCall;
}

/**
 * Takes flock(2) LOCK_EX on `fd` without waiting: true when taken, false when another open file
 * holds it (in this process or another); throws on any other failure, naming `path`. For other
 * one-writer files (k8s/cdi/slot-file.ts).
 */
export function tryLockExclusive(fd: number, path: string): boolean {
  if (flock()(fd, LOCK_EX | LOCK_NB) === 0) return true;
  const errno = koffi.errno();
  if (errno === koffi.os.errno['EWOULDBLOCK'] || errno === koffi.os.errno['EAGAIN']) return false;
  throw new GsError(ErrorCodes.internal, `cannot lock ${path}: flock failed with errno ${errno}`);
}

/**
 * Takes the state directory's lock, or throws GS_ERR_CONFLICT naming the daemon that holds it.
 * `dir` must exist (ensurePrivateDir). `now` and `pid` are parameters for tests.
 */
export function lockStateDir(dir: string, addresses: readonly string[], now: number = Date.now(), pid: number = process.pid): StateLock {
  const path = join(dir, LOCK_FILE);
  // Read-write without O_APPEND: the holder rewrites the text from offset 0.
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o600);
  if (flock()(fd, LOCK_EX | LOCK_NB) !== 0) {
    const errno = koffi.errno();
    closeSync(fd);
    if (errno === koffi.os.errno['EWOULDBLOCK'] || errno === koffi.os.errno['EAGAIN']) throw heldBy(dir, readHolder(path));
    throw new GsError(ErrorCodes.internal, `cannot lock ${path}: flock failed with errno ${errno}`);
  }
  let open = true;
  const write = (list: readonly string[]): void => {
    const text = Buffer.from(`${JSON.stringify({ pid, addresses: list, since: now } satisfies LockHolder)}\n`);
    writeSync(fd, text, 0, text.length, 0);
    ftruncateSync(fd, text.length);
  };
  try {
    write(addresses);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  return {
    path,
    describe: (list) => {
      if (open) write(list);
    },
    release: () => {
      if (!open) return;
      open = false;
      closeSync(fd);
    },
  };
}

/** The holder the file names; null when it says nothing usable (the holder is still writing it). */
export function readHolder(path: string): LockHolder | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    if (typeof v.pid !== 'number' || !Array.isArray(v.addresses) || typeof v.since !== 'number') return null;
    return { pid: v.pid, addresses: v.addresses.filter((a): a is string => typeof a === 'string'), since: v.since };
  } catch {
    return null;
  }
}

/** The refusal: who holds the directory and what to do instead. */
export function heldBy(dir: string, holder: LockHolder | null): GsError {
  const who =
    holder === null
      ? 'another gpushare daemon (it is starting: its pid is not written yet)'
      : `another gpushare daemon (pid ${holder.pid}, listening on ${holder.addresses.join(', ') || 'nothing yet'}, since ${new Date(holder.since).toISOString()})`;
  return new GsError(ErrorCodes.conflict, `${who} already uses the state directory ${dir}; stop it first, or start this one with another --state-dir`);
}
