/**
 * A cgroup v2 directory per task, <root>/tenant-<name>/task-<id> (<root> is <cgroup2
 * mount>/gpushare/state-<hash of the state directory> unless configured): gpushare-exec moves the task's process into it before exec
 * (native/exec/sandbox.c), so everything the task starts is inside, double-forked and setsid'd
 * daemons included. When the task ends, whatever is left in it is killed at once through
 * cgroup.kill and the directory removed; at start, directories of tasks that are no longer
 * running are cleaned up the same way. Only membership and cgroup.kill are used: no controller
 * is enabled, so it works on a hybrid layout's controller-less v2 mount as well.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Where cgroup v2 is mounted, from /proc/self/mountinfo's text; null when it is not. */
export function cgroup2Mount(mountinfo: string): string | null {
  for (const line of mountinfo.split('\n')) {
    // "36 25 0:31 / /sys/fs/cgroup rw,nosuid... shared:9 - cgroup2 cgroup2 rw,..."
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined || right.split(' ')[0] !== 'cgroup2') continue;
    const fields = left.split(' ');
    if (fields[3] !== '/') continue; // a bind of a subtree (a container's view): not the whole hierarchy
    const mount = fields[4];
    if (mount !== undefined) return mount.replace(/\\040/g, ' ');
  }
  return null;
}

/** The directory of a task's cgroup: one level per tenant, so a tenant's tasks can be found (and, later, limited) together. */
export function taskCgroupPath(root: string, tenant: string | null, taskId: string): string {
  return join(root, tenant === null ? 'no-tenant' : `tenant-${tenant}`, `task-${taskId}`);
}

/** The task id a cgroup directory name stands for; null for anything else. */
function taskIdOf(name: string): string | null {
  return name.startsWith('task-') ? name.slice(5) : null;
}

export type CgroupSetup = { readonly ok: true; readonly root: string } | { readonly ok: false; readonly problem: string };

/**
 * Finds and creates the root of this daemon's tasks' cgroups: `setting` is auto (cgroup v2's
 * mount + /gpushare), off, or a directory; `key` (sandbox-plan.ts daemonKey) is this daemon's
 * level below it. Says why not when it cannot be used: no cgroup v2, not
 * writable (not root, or a read-only /sys in a container), or a kernel without cgroup.kill (< 5.14).
 */
export function setUpCgroups(setting: string, key: string, mountinfo: () => string = () => readFileSync('/proc/self/mountinfo', 'utf8')): CgroupSetup {
  if (setting === 'off') return { ok: false, problem: 'per-task cgroups are off (sandbox.cgroup: off)' };
  let root = join(setting, key);
  if (setting === 'auto') {
    let mount: string | null;
    try {
      mount = cgroup2Mount(mountinfo());
    } catch (err) {
      return { ok: false, problem: `cannot read /proc/self/mountinfo: ${(err as Error).message}` };
    }
    if (mount === null) return { ok: false, problem: 'no cgroup v2 hierarchy is mounted' };
    root = join(mount, 'gpushare', key);
  }
  try {
    mkdirSync(root, { recursive: true });
  } catch (err) {
    return { ok: false, problem: `cannot create ${root}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` };
  }
  if (!existsSync(join(root, 'cgroup.procs'))) return { ok: false, problem: `${root} is not in a cgroup v2 hierarchy` };
  if (!existsSync(join(root, 'cgroup.kill'))) return { ok: false, problem: `${root} has no cgroup.kill (Linux 5.14 or later is needed)` };
  return { ok: true, root };
}

const REMOVE_RETRY_MS = 50;
const REMOVE_TRIES = 100;

/** The tasks' cgroups under one root (see the top of this file). */
export class TaskCgroups {
  private readonly retries = new Set<NodeJS.Timeout>();
  private closed = false;

  /** `onProblem`: a cgroup that could not be killed or removed (logged; nothing else depends on it). */
  constructor(
    readonly root: string,
    private readonly onProblem: (message: string) => void = () => undefined,
  ) {}

  /** The task's cgroup directory, for GPUSHARE_EXEC_CGROUP: gpushare-exec creates it (and its tenant's level) and joins it. */
  pathOf(tenant: string | null, taskId: string): string {
    return taskCgroupPath(this.root, tenant, taskId);
  }

  /**
   * Sends `signal` to the processes in the task's cgroup that left its process group `pgid`
   * (the caller signals the group itself: a process must not get a SIGINT twice).
   */
  signalLeavers(tenant: string | null, taskId: string, pgid: number, signal: number): void {
    for (const pid of this.members(taskCgroupPath(this.root, tenant, taskId))) {
      if (processGroupOf(pid) === pgid) continue;
      try {
        process.kill(pid, signal);
      } catch {
        // ended meanwhile
      }
    }
  }

  /** Kills whatever is left of the task and removes its cgroup (retrying while the kernel empties it), off the event loop. */
  release(tenant: string | null, taskId: string): void {
    void this.releaseLater(taskCgroupPath(this.root, tenant, taskId));
  }

  /**
   * Kills and removes the cgroup of every task not in `running` (left by a daemon that crashed),
   * and the tenants' levels left empty: only here, never while tasks start (gpushare-exec may be
   * about to create a task's cgroup in one).
   */
  sweep(running: ReadonlySet<string>): number {
    let swept = 0;
    for (const group of subdirs(this.root)) {
      for (const name of subdirs(join(this.root, group))) {
        const id = taskIdOf(name);
        if (id === null || running.has(id)) continue;
        this.killAndRemove(join(this.root, group, name));
        swept += 1;
      }
      try {
        rmdirSync(join(this.root, group));
      } catch {
        // a running task's, or a killed one's still emptying
      }
    }
    return swept;
  }

  close(): void {
    this.closed = true;
    for (const t of this.retries) clearTimeout(t);
    this.retries.clear();
  }

  private members(dir: string): number[] {
    try {
      return readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter((l) => l !== '').map(Number);
    } catch {
      return [];
    }
  }

  /** Kills what is in `dir` now and removes it (at start-up: in the background while the kernel empties it). */
  private killAndRemove(dir: string): void {
    try {
      // Every process in it gets SIGKILL at once; none can fork its way out meanwhile.
      writeFileSync(join(dir, 'cgroup.kill'), '1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onProblem(`cannot kill what is left in ${dir}: ${(err as Error).message}`);
      return;
    }
    this.removeNow(dir);
  }

  /**
   * A task's end, on the thread pool: its cgroup is usually empty by then (its command and the
   * wrapper's child ended with it), and an rmdir alone removes it; only one that still has
   * processes (EBUSY: what the task left running) has them killed through cgroup.kill and is
   * removed once the kernel has emptied it. A write to cgroup.kill on the event loop for every
   * ended task was 14% of the daemon's busy time in a sandboxed start run (about 0.4 ms a task
   * on the development VM, under 500 starts a second).
   */
  private async releaseLater(dir: string): Promise<void> {
    if ((await this.rmdirOnce(dir)) === 'done') return;
    try {
      // Every process in it gets SIGKILL at once; none can fork its way out meanwhile.
      await writeFile(join(dir, 'cgroup.kill'), '1');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onProblem(`cannot kill what is left in ${dir}: ${(err as Error).message}`);
      return;
    }
    await this.removeLater(dir, REMOVE_TRIES);
  }

  private removeNow(dir: string): void {
    try {
      rmdirSync(dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EBUSY') void this.removeLater(dir, REMOVE_TRIES);
      else if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.onProblem(`cannot remove ${dir}: ${(err as Error).message}`);
    }
  }

  /** One rmdir off the event loop: 'busy' while processes are left in it (EBUSY); else 'done' (removed, already gone, or the problem reported). */
  private async rmdirOnce(dir: string): Promise<'done' | 'busy'> {
    try {
      await rmdir(dir);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EBUSY') return 'busy';
      if (code !== 'ENOENT') this.onProblem(`cannot remove ${dir}: ${(err as Error).message}`);
    }
    return 'done';
  }

  /** rmdir off the event loop (a cgroup's is slow), refused (EBUSY) until the killed processes are really gone. */
  private async removeLater(dir: string, tries: number): Promise<void> {
    for (let left = tries; left > 0 && !this.closed; left--) {
      if ((await this.rmdirOnce(dir)) === 'done') return;
      await new Promise((resolve) => {
        const t = setTimeout(() => {
          this.retries.delete(t);
          resolve(undefined);
        }, REMOVE_RETRY_MS);
        t.unref();
        this.retries.add(t);
      });
    }
    if (!this.closed) this.onProblem(`cannot remove ${dir}: its processes did not go within ${(tries * REMOVE_RETRY_MS) / 1000} s`);
  }
}

/** The process group of `pid` (field 5 of /proc/PID/stat); null when it is gone. */
function processGroupOf(pid: number): number | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(text.slice(text.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return null;
  }
}

function subdirs(dir: string): string[] {
  try {
    return readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}
