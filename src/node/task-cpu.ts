/**
 * The CPU weight of everything the daemon starts: the spawner, each task's wrapper, the task and
 * whatever it starts, the tenant's clean-up `rm`, all in one cgroup whose CPU weight is low
 * (10 by default, against the 100 every other group has), so that when the CPU is short the
 * daemon's accept path (a submission's answer) comes first, as a kubelet's system-reserved or a
 * systemd service with a higher CPUWeight does, and tasks still get every CPU the daemon leaves
 * idle: a weight is only a share under contention, never a cap (a quota would be, and would
 * slow tasks on an idle machine).
 *
 * Why a group and not only priority.ts's autogroup nice: every task leads a session of its own,
 * so under autogroup scheduling each is a group as heavy as any other; at 500 starts a second
 * on 2 cores, 30 runnable starts together outweigh the daemon's nice -10 (9,548 against 30 x
 * 1,024) and submissions wait behind them. In one group they weigh as one, whatever their
 * number. Autogroups only apply in the root CPU cgroup, so a daemon run as a service in a cgroup
 * of its own (systemd) has only this.
 *
 * Where: the first CPU controller found, from /proc/self/mountinfo:
 * - cgroup v2 with `cpu` enabled at its root (cgroup.subtree_control, as systemd does): the
 *   group is <mount>/gpushare/<daemon key>, the tasks' cgroup root of the sandbox (cgroup.ts),
 *   `cpu` enabled in <mount>/gpushare so that it has a cpu.weight, and the spawner in its leaf
 *   <group>/spawner (cgroup v2 keeps processes in leaves); the wrappers move their tasks to
 *   <group>/tenant-*\/task-*, still inside. A sandbox.cgroup set to another directory takes the
 *   tasks out of the group (that directory's weight is then its owner's to set);
 * - else a cgroup v1 hierarchy with the `cpu` controller (a hybrid layout, like this development
 *   machine's): <mount>/gpushare/<daemon key> with cpu.shares = weight x 1024 / 100, the spawner
 *   in it; everything it forks stays in it (the v2 moves of the sandbox do not touch v1).
 * The spawner is moved when it starts, before it has been sent anything, so nothing it starts
 * runs outside the group. The daemon itself stays where it is. Needs root (or a delegated,
 * writable cgroup): otherwise the outcome says why, and starts run at the daemon's weight.
 */
import { mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The tasks' weight when the config says `auto`, in cgroup v2 units (every group's default: 100). */
export const AUTO_TASK_CPU_WEIGHT = 10;

export type TaskCpuWeightSetting = 'auto' | 'off' | number;

/** A CPU controller's hierarchy: `version` 2 (cpu.weight, 1-10000) or 1 (cpu.shares, 2-262144). */
export interface CpuHierarchy {
  readonly version: 1 | 2;
  readonly mount: string;
}

/** What the file system looks like (a parameter for tests). */
export interface CgroupFs {
  readFile(path: string): string;
  writeFile(path: string, text: string): void;
  mkdir(path: string): void;
  rmdir(path: string): void;
}

const REAL_FS: CgroupFs = {
  readFile: (path) => readFileSync(path, 'utf8'),
  writeFile: (path, text) => writeFileSync(path, text),
  mkdir: (path) => mkdirSync(path, { recursive: true }),
  rmdir: (path) => rmdirSync(path),
};

/**
 * The hierarchy to use, from /proc/self/mountinfo's text: cgroup v2 when its root delegates
 * `cpu` to its children, else a v1 hierarchy with `cpu`; null when neither.
 */
export function findCpuHierarchy(mountinfo: string, fs: Pick<CgroupFs, 'readFile'>): CpuHierarchy | null {
  let v1: string | null = null;
  for (const line of mountinfo.split('\n')) {
    // "36 25 0:31 / /sys/fs/cgroup/cpu rw,nosuid... shared:9 - cgroup cgroup rw,cpu,cpuacct"
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    if (fields[3] !== '/') continue; // a bind of a subtree (a container's view): not the whole hierarchy
    const mount = fields[4]?.replace(/\\040/g, ' ');
    if (mount === undefined) continue;
    const [type, , options] = right.split(' ');
    if (type === 'cgroup2') {
      let delegated: string;
      try {
        delegated = fs.readFile(join(mount, 'cgroup.subtree_control'));
      } catch {
        continue;
      }
      if (delegated.split(/\s+/).includes('cpu')) return { version: 2, mount };
    } else if (type === 'cgroup' && v1 === null && (options ?? '').split(',').includes('cpu')) {
      v1 = mount;
    }
  }
  return v1 === null ? null : { version: 1, mount: v1 };
}

/** cpu.weight (v2, 1-10000) as v1's cpu.shares (2-262144): 100 is 1,024 in both. */
export function weightToShares(weight: number): number {
  return Math.min(262_144, Math.max(2, Math.round((weight * 1024) / 100)));
}

export type TaskCpuOutcome =
  | { readonly kind: 'set'; readonly group: TaskCpuGroup }
  | { readonly kind: 'off' }
  /** Not applied: why; `asked` is whether the config named a weight. */
  | { readonly kind: 'unavailable'; readonly problem: string; readonly asked: boolean };

/** The group the spawner (and so everything it starts) runs in. */
export class TaskCpuGroup {
  constructor(
    readonly hierarchy: CpuHierarchy,
    /** The weighted group's directory. */
    readonly dir: string,
    readonly weight: number,
    private readonly fs: CgroupFs = REAL_FS,
  ) {}

  /** Where the spawner's pid is written (v2: a leaf below the weighted group). */
  get spawnerDir(): string {
    return this.hierarchy.version === 2 ? join(this.dir, 'spawner') : this.dir;
  }

  /**
   * Moves a process (the spawner, just started) into the group; the directory is made again if
   * something removed it meanwhile (the sandbox's sweep of an empty leaf). Throws the error.
   */
  place(pid: number): void {
    this.fs.mkdir(this.spawnerDir);
    this.fs.writeFile(join(this.spawnerDir, 'cgroup.procs'), String(pid));
  }

  /**
   * Removes the spawner's leaf (v2) and the group once nothing is left in them: tried for a
   * second while the spawner, told to end, exits (a timer that does not keep the process up).
   * Tasks that outlive the daemon keep them, for the next daemon.
   */
  close(tries = CLOSE_TRIES): void {
    for (const dir of this.hierarchy.version === 2 ? [this.spawnerDir, this.dir] : [this.dir]) {
      try {
        this.fs.rmdir(dir);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') continue;
        if (code === 'EBUSY' && tries > 1) setTimeout(() => this.close(tries - 1), CLOSE_RETRY_MS).unref();
        return; // still in use (a task runs on, or the sandbox's tenant levels are there): kept
      }
    }
  }
}

const CLOSE_TRIES = 20;
const CLOSE_RETRY_MS = 50;

/**
 * Makes the group for this daemon (`key`: sandbox-plan.ts daemonKey) with the weight the setting
 * asks for; says why not when it cannot.
 */
export function setUpTaskCpu(
  setting: TaskCpuWeightSetting,
  key: string,
  mountinfo: () => string = () => readFileSync('/proc/self/mountinfo', 'utf8'),
  fs: CgroupFs = REAL_FS,
): TaskCpuOutcome {
  if (setting === 'off') return { kind: 'off' };
  const weight = setting === 'auto' ? AUTO_TASK_CPU_WEIGHT : setting;
  const asked = setting !== 'auto';
  let hierarchy: CpuHierarchy | null;
  try {
    hierarchy = findCpuHierarchy(mountinfo(), fs);
  } catch (err) {
    return { kind: 'unavailable', problem: `cannot read /proc/self/mountinfo: ${(err as Error).message}`, asked };
  }
  if (hierarchy === null) return { kind: 'unavailable', problem: 'no cgroup hierarchy with the cpu controller (cgroup v2 with cpu enabled at its root, or cgroup v1 cpu)', asked };
  const top = join(hierarchy.mount, 'gpushare');
  const dir = join(top, key);
  const step = (what: string, fn: () => void): string | null => {
    try {
      fn();
      return null;
    } catch (err) {
      return `${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`;
    }
  };
  const problem =
    step(`cannot create ${dir}`, () => fs.mkdir(dir)) ??
    (hierarchy.version === 2 ? step(`cannot enable cpu in ${top}/cgroup.subtree_control`, () => fs.writeFile(join(top, 'cgroup.subtree_control'), '+cpu')) : null) ??
    // The weight is set on `gpushare` too: a weight shares the CPU among siblings only, and
    // `gpushare` is what competes with the daemon's own group; `<key>` is usually its only child.
    [top, dir].reduce<string | null>(
      (failed, at) =>
        failed ??
        (hierarchy.version === 2
          ? step(`cannot set ${at}/cpu.weight`, () => fs.writeFile(join(at, 'cpu.weight'), String(weight)))
          : step(`cannot set ${at}/cpu.shares`, () => fs.writeFile(join(at, 'cpu.shares'), String(weightToShares(weight))))),
      null,
    );
  if (problem !== null) return { kind: 'unavailable', problem: `the tasks' CPU weight could not be set (${problem})`, asked };
  return { kind: 'set', group: new TaskCpuGroup(hierarchy, dir, weight, fs) };
}
