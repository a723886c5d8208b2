/**
 * Directories removed off the kubelet's path: a claim's directory at NodeUnprepareResources, a
 * served container's when its pod is deleted.
 *
 * Why: removing a small directory on the node's disk (rm -r: rmdir frees its block and inode
 * under ext4's journal) took 0.4-1.8 ms at p50 and 7-10 ms at p99 on the development VM (session
 * 25, docs/benchmarks.md), a large part of an unprepare, and for the device plugin a stall of
 * its event loop in front of any Allocate waiting; renaming it took 0.015 / 0.1 ms. So a call
 * renames the directory into `gone/` (a sibling of its parent, on the same file system, so the
 * parent's lock is not held by the removal while the next call makes a directory in it) and
 * answers; the directory's name is free at once, so a claim prepared again gets a new one. The
 * removal runs afterwards, when the owner's `schedule` says (default: right after the current
 * call's answer), one directory at a time, on libuv's threads (fs.promises.rm), not on the event
 * loop. Nothing reads `gone/`: a start empties it (what an agent killed before the removal left),
 * so nothing is leaked across a crash.
 *
 * Why the DRA plugin schedules the removal for a quiet moment (grpc/quiet-queue.ts): the
 * removal's rmdir holds `gone/`'s lock while ext4's journal makes it wait, and the next
 * unprepare's rename into `gone/` waited behind it: 0.35 ms a rename on average in the plugin's
 * profile with the removal right after each answer (session 25), against 0.015 ms alone.
 */
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { afterAnswer } from '../grpc/quiet-queue.js';

export class GoneDirs {
  private count = 0;
  private readonly queue: string[] = [];
  private running: Promise<void> | null = null;

  /**
   * `dir`: the trash, on the same file system as the directories discarded; `onError`: a removal
   * that failed (logged: nothing else depends on it); `schedule`: runs the removals' start when
   * the owner likes (default: a 0 ms timer, after the current call's answer has gone).
   */
  constructor(
    readonly dir: string,
    private readonly onError: (path: string, error: Error) => void,
    private readonly schedule: (start: () => void) => void = afterAnswer,
  ) {}

  /** Empties the trash and makes it (at start, under the agent's state lock: what a killed agent left). */
  reset(): void {
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
  }

  /**
   * Moves `path` into the trash now (its name is free when this returns) and removes it later,
   * after the current call's answer; false when nothing was at `path`. Throws when the rename
   * fails otherwise (nothing moved).
   */
  discard(path: string): boolean {
    const to = join(this.dir, `${basename(path)}.${process.pid}.${++this.count}`);
    try {
      renameSync(path, to);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      if (!existsSync(path)) return false;
      mkdirSync(this.dir, { recursive: true }); // the trash was removed behind our back: made again
      renameSync(path, to);
    }
    this.queue.push(to);
    this.running ??= this.drain();
    return true;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      await new Promise<void>((resolve) => this.schedule(resolve)); // after the answer of the call that discarded, at the earliest
      // What was discarded by then; later discards wait for the next quiet moment, not this one.
      const batch = this.queue.splice(0);
      for (const path of batch) {
        try {
          await rm(path, { recursive: true, force: true });
        } catch (e) {
          this.onError(path, e as Error);
        }
      }
    }
    this.running = null;
  }

  /** Resolves when every directory discarded so far is removed (shutdown, tests). */
  async settled(): Promise<void> {
    while (this.running !== null) await this.running;
  }
}
