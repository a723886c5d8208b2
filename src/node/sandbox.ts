/**
 * Tenant isolation at the operating-system level (docs/security.md): which unprivileged user each
 * task runs as, the clean environment it starts from, its private directory, and its cgroup.
 * The decisions are pure (sandbox-plan.ts, cgroup.ts's path planning); this is the shell that
 * reads the account files once at start, allocates uids in the store, says where the task's
 * own directory and cgroup go, and cleans both up when the task ends. gpushare-exec creates
 * them and switches user itself, between fork and exec (native/exec/sandbox.c).
 */
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { rm, rmdir, unlink } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { ErrorCodes, GsError } from '../domain/index.js';
import type { Task, TaskGpu } from '../contract/task.js';
import { setUpCgroups, TaskCgroups } from './cgroup.js';
import type { SandboxConfig } from './config.js';
import { allocatedUser, baseEnvironment, boardVariables, daemonKey, DEFAULT_TASK_DIR, DEFAULT_UID_BASE, DEFAULT_UID_COUNT, nextFreeUid, parsePasswd, rangeConflicts, resolveRunAs, wrapperVariables, type RunAs, type TaskUser } from './sandbox-plan.js';
import type { TenantUidStore } from './store/tenant-uids.js';

/** What is isolated on this daemon, for the start-up message and the health endpoint. */
export interface SandboxStatus {
  /** Tasks run as per-tenant unprivileged users. */
  readonly users: boolean;
  /** Why not, when they do not. */
  readonly usersProblem: string | null;
  /** Where the tasks' cgroups are; null: none. */
  readonly cgroupRoot: string | null;
  readonly cgroupProblem: string | null;
}

/** What a task is launched with: the environment it starts from, and the wrapper's sandbox variables. */
export interface PreparedTask {
  readonly baseEnv: Readonly<Record<string, string>>;
  readonly wrapperEnv: Record<string, string>;
}

type Env = Readonly<Record<string, string | undefined>>;

/** Where the account files are (tests point them elsewhere). */
export interface AccountFiles {
  readonly passwd: string;
  readonly group: string;
  readonly subuid: string;
  readonly subgid: string;
}

const ETC: AccountFiles = { passwd: '/etc/passwd', group: '/etc/group', subuid: '/etc/subuid', subgid: '/etc/subgid' };

/** Whether tasks will run as per-tenant users, decided before anything is opened; throws for `users: on` without root. */
export function sandboxUsers(config: SandboxConfig, isRoot: boolean): { on: boolean; problem: string | null } {
  if (config.users === 'off') return { on: false, problem: 'sandbox.users is off' };
  if (isRoot) return { on: true, problem: null };
  const problem = `the daemon is not root (uid ${process.getuid?.() ?? '?'}), so it cannot switch users`;
  if (config.users === 'on') throw new GsError(ErrorCodes.invalidArgument, `sandbox.users is on, but ${problem}; run it as root or set sandbox.users to auto or off`);
  return { on: false, problem };
}

/**
 * The database file, created private (0600) before SQLite opens it, which gives its -wal and
 * -shm files the same mode: nothing of the state is readable by others, even through a
 * directory someone made traversable.
 */
export function privateDatabase(path: string): void {
  if (existsSync(path)) chmodSync(path, 0o600);
  else closeSync(openSync(path, 'a', 0o600));
}

export interface SandboxOptions {
  readonly config: SandboxConfig;
  /** Names this daemon's share of the task directory and the cgroup root (sandbox-plan.ts daemonKey). */
  readonly stateDir: string;
  /** From sandboxUsers. */
  readonly usersOn: boolean;
  readonly usersProblem: string | null;
  /** Tenants with a configured user (config file `tenants[].runAs`). */
  readonly runAs: ReadonlyMap<string, RunAs>;
  /** Allocated uids; required when users are on. */
  readonly uids: TenantUidStore | null;
  /** The daemon's environment: only its locale and `passEnv` reach tasks. */
  readonly daemonEnv: Env;
  readonly now: () => number;
  readonly onProblem?: (message: string) => void;
  readonly accounts?: AccountFiles;
  /** Where /proc/self/mountinfo's text comes from (tests). */
  readonly mountinfo?: () => string;
}

/** Tasks' users, environments, directories and cgroups (see the top of this file). */
export class Sandbox {
  private readonly configured = new Map<string, TaskUser>();
  private readonly allocated = new Map<string, TaskUser>();
  private readonly baseEnvs = new Map<string, Readonly<Record<string, string>>>();
  private runAs: StartAs = runAsWithNode;
  private readonly noTenant: TaskUser | 'daemon' | 'allocated';
  private readonly cgroups: TaskCgroups | null;
  private readonly cgroupProblem: string | null;
  /** This daemon's part of sandbox.taskDir; null: tasks' own directories are their state directories'. */
  private readonly taskDir: string | null;
  /**
   * Where tasks' compute boards are, one per user and GPU (native/shim/COMPUTE.md "Boards per
   * user"): sandbox.taskDir's `compute`, root's and shared by the daemons of the host, so every
   * task on a GPU is laid out with every other; null without users (tasks share one board per
   * GPU in /dev/shm, as any process under libgpushare does).
   */
  private readonly boardDir: string | null;
  private readonly daemonUser = { name: userInfo().username, home: homedir() };

  /** Resolves every configured user and checks the uid range now: a bad setting stops the start, not a task. */
  constructor(private readonly options: SandboxOptions) {
    const { config } = options;
    const accounts = options.accounts ?? ETC;
    // Read once: the configured users, the range check and noTenant all resolve against them.
    const passwd = options.usersOn ? parsePasswd(readText(accounts.passwd)) : [];
    const groups = options.usersOn ? readText(accounts.group) : '';
    if (options.usersOn) {
      for (const [tenant, runAs] of options.runAs) this.configured.set(tenant, resolveRunAs(runAs, passwd, groups, `tenant "${tenant}": runAs`));
      const conflicts = rangeConflicts(config.uidBase, config.uidCount, passwd, `${readText(accounts.subuid)}\n${readText(accounts.subgid)}`);
      if (conflicts.length > 0) {
        throw new GsError(ErrorCodes.invalidArgument, `sandbox: the uid range ${config.uidBase}-${config.uidBase + config.uidCount - 1} for tenants' users is not free (${conflicts.join('; ')}); choose sandbox.uidBase elsewhere`);
      }
      if (options.uids === null) throw new Error('sandbox: allocated uids need a store');
    }
    this.taskDir = options.usersOn ? sharedRootDir(join(config.taskDir, daemonKey(options.stateDir))) : null;
    if (options.usersOn) claimUidRange(config.taskDir, config.uidBase, config.uidCount, options.stateDir);
    this.boardDir = options.usersOn ? sharedRootDir(join(config.taskDir, 'compute'), 0o755) : null;
    const nt = config.noTenant;
    this.noTenant = typeof nt === 'string' ? nt : options.usersOn ? resolveRunAs(nt, passwd, groups, 'sandbox.noTenant') : 'daemon';
    const setup = options.usersOn ? setUpCgroups(config.cgroup, daemonKey(options.stateDir), options.mountinfo) : setUpCgroups('off', '');
    this.cgroups = setup.ok ? new TaskCgroups(setup.root, options.onProblem) : null;
    this.cgroupProblem = setup.ok ? null : options.usersOn ? setup.problem : 'the daemon is not root, so it creates no cgroups';
  }

  /** Tasks as the daemon's user, without cgroups, from a clean environment: a daemon built without serve.ts (tests). */
  static unsandboxed(daemonEnv: Env = process.env): Sandbox {
    const config: SandboxConfig = { users: 'off', uidBase: DEFAULT_UID_BASE, uidCount: DEFAULT_UID_COUNT, noTenant: 'daemon', passEnv: [], taskDir: DEFAULT_TASK_DIR, cgroup: 'off' };
    return new Sandbox({ config, stateDir: '', usersOn: false, usersProblem: 'sandbox.users is off', runAs: new Map(), uids: null, daemonEnv, now: Date.now });
  }

  status(): SandboxStatus {
    return { users: this.options.usersOn, usersProblem: this.options.usersOn ? null : this.options.usersProblem, cgroupRoot: this.cgroups?.root ?? null, cgroupProblem: this.cgroupProblem };
  }

  /** Lines for the person who started the daemon: what is not isolated, and why. */
  notices(): string[] {
    const s = this.status();
    const lines: string[] = [];
    if (!s.users) lines.push(`gpushare serve: tasks run as the daemon's own user (${s.usersProblem}): tenants are separated only at the API; a task can read other tenants' logs and the daemon's state, and a kill reaches its process group only (docs/security.md).`);
    else lines.push(`gpushare serve: tasks run as their tenant's own unprivileged user; their own directories are in ${this.taskDir}.`);
    if (s.users && this.noTenant === 'daemon') lines.push(`gpushare serve: tasks of no tenant run as the daemon's own user (root) (sandbox.noTenant: daemon).`);
    if (s.users && s.cgroupRoot === null) lines.push(`gpushare serve: no per-task cgroups (${s.cgroupProblem}): killing a task reaches its process group only; processes that leave it (setsid) survive.`);
    return lines;
  }

  /** Where a new task's region goes: in its own directory when it runs as another user; null: the default (its state directory). */
  regionPath(taskId: string): string | null {
    return this.taskDir === null ? null : join(this.taskDir, taskId, 'region');
  }

  /** The user a task of `tenant` runs as; null: the daemon's own. */
  userFor(tenant: string | null): TaskUser | null {
    if (!this.options.usersOn) return null;
    if (tenant !== null) return this.configured.get(tenant) ?? this.allocate(tenant);
    if (this.noTenant === 'daemon') return null;
    return this.noTenant === 'allocated' ? this.allocate('') : this.noTenant;
  }

  /**
   * Before the launch: the task's environment's base, and what gpushare-exec makes of it: its
   * user, its own directory (where its region is; its user's alone, and its HOME unless
   * /etc/passwd gives it one) and its cgroup. Its logs and exit status stay in the daemon's
   * private state directory. Throws when a user cannot be allocated; the task then fails so.
   */
  prepare(task: Task, gpus: readonly TaskGpu[] = []): PreparedTask {
    const user = this.userFor(task.tenant);
    // gpushare-exec creates the own directory and the cgroup, between fork and exec: the
    // daemon's event loop pays for neither mkdir (hundreds of microseconds on a slow disk).
    const own = this.ownDir(task);
    // Without a user to give it to (sandbox.noTenant: daemon), the daemon makes it itself.
    if (own !== null && user === null) mkdirSync(own, { recursive: true, mode: 0o700 });
    const cgroup = this.cgroups?.pathOf(task.tenant, task.id) ?? null;
    const who = user === null ? this.daemonUser : { name: user.name, home: user.home ?? own ?? '/' };
    const wrapperEnv = wrapperVariables(user, cgroup, own);
    // Read by the task too: gpushare-exec removes only GPUSHARE_EXEC_BOARDS.
    if (this.boardDir !== null) Object.assign(wrapperEnv, boardVariables(this.boardDir, gpus.map((g) => g.uuid), user?.uid ?? process.getuid?.() ?? 0));
    return { baseEnv: this.baseEnvOf(who), wrapperEnv };
  }

  /**
   * A user's base environment, made once per user (it walks the daemon's whole environment),
   * its HOME put in per task: an allocated user's is the task's own directory, a new one each.
   */
  private baseEnvOf(who: { readonly name: string; readonly home: string }): Readonly<Record<string, string>> {
    let env = this.baseEnvs.get(who.name);
    if (env === undefined) {
      env = Object.freeze(baseEnvironment(who, this.options.daemonEnv, this.options.config.passEnv));
      this.baseEnvs.set(who.name, env);
    }
    return env['HOME'] === who.home ? env : { ...env, HOME: who.home };
  }

  /** Sends `signal` to the task's processes that left its process group (the caller signals the group). */
  signal(task: Task, signal: number): void {
    if (task.pid !== null) this.cgroups?.signalLeavers(task.tenant, task.id, task.pid, signal);
  }

  /**
   * Runs what the sandbox starts (a tenant's own rm of its task's directory) through `runAs`:
   * the lifecycle's spawner, so no task's end forks the daemon.
   */
  useStarter(runAs: StartAs): void {
    this.runAs = runAs;
  }

  /** The task ended: whatever it left running is killed, its cgroup and its own directory removed. */
  release(task: Task): void {
    this.cgroups?.release(task.tenant, task.id);
    const own = this.ownDir(task);
    if (own !== null) this.removeOwn(own);
  }

  /** At start, after adoption: the cgroups and own directories of tasks that are not running any more go. */
  sweep(running: ReadonlySet<string>): number {
    let swept = this.cgroups?.sweep(running) ?? 0;
    if (this.taskDir !== null) {
      for (const id of readdirSync(this.taskDir)) {
        if (running.has(id)) continue;
        this.removeOwn(join(this.taskDir, id));
        swept += 1;
      }
    }
    return swept;
  }

  /** The task's own directory, when it has one apart from its state directory. */
  private ownDir(task: Task): string | null {
    const own = dirname(task.regionPath);
    return this.taskDir !== null && dirname(own) === this.taskDir ? own : null;
  }

  /** Its user's files go with it, off the event loop, removed with that user's rights (removeOwnDir). */
  private removeOwn(dir: string): void {
    removeOwnDir(dir, this.runAs).catch((err: unknown) => this.options.onProblem?.(`cannot remove ${dir}: ${(err as Error).message}`));
  }

  /** Stops retrying removals; this daemon's (empty) levels of the shared directories go. */
  close(): void {
    this.cgroups?.close();
    for (const dir of [this.taskDir, this.cgroups?.root]) {
      if (dir === null || dir === undefined) continue;
      try {
        rmdirSync(dir);
      } catch {
        // tasks outlive the daemon there (re-adopted at the next start)
      }
    }
  }

  private allocate(tenant: string): TaskUser {
    const cached = this.allocated.get(tenant);
    if (cached) return cached;
    const { uidBase, uidCount } = this.options.config;
    const uid = (this.options.uids as TenantUidStore).getOrAllocate(tenant, this.options.now(), (taken) => {
      const free = nextFreeUid(uidBase, uidCount, taken);
      if (free === null) throw new GsError(ErrorCodes.conflict, `sandbox: all ${uidCount} uids from ${uidBase} are allocated; raise sandbox.uidCount`);
      return free;
    });
    const user = allocatedUser(tenant === '' ? null : tenant, uid);
    this.allocated.set(tenant, user);
    return user;
  }
}

/**
 * Each daemon allocates tenants' uids in its own database; two daemons on one host (sharing
 * sandbox.taskDir) handing out the same range would give two tenants one uid, and each could
 * then read and signal the other's tasks. So a daemon claims its range in the shared directory
 * (a file `uids-BASE-COUNT` naming its state directory) and refuses to start over a range that
 * overlaps another live daemon's. A claim whose state directory is gone is stale (its
 * allocations went with its database) and is taken over.
 */
export function claimUidRange(shared: string, base: number, count: number, stateDir: string): void {
  const mine = resolve(stateDir);
  for (const name of readdirSync(shared)) {
    const m = /^uids-(\d+)-(\d+)$/.exec(name);
    if (!m) continue;
    const [b, c] = [Number(m[1]), Number(m[2])];
    if (b + c <= base || base + count <= b) continue;
    const file = join(shared, name);
    const owner = readText(file).trim();
    if (owner === mine) continue;
    if (owner !== '' && existsSync(owner)) {
      throw new GsError(ErrorCodes.conflict, `sandbox: the uids ${base}-${base + count - 1} overlap ${b}-${b + c - 1}, which the daemon of state directory ${owner} allocates tenants' users from (${file}); give this daemon another range (sandbox.uidBase), or remove that file if that daemon and its state are gone`);
    }
    rmSync(file, { force: true }); // stale: that daemon's state, and its allocations, are gone
  }
  const own = join(shared, `uids-${base}-${count}`);
  if (readText(own).trim() !== mine) writeFileSync(own, `${mine}\n`, { mode: 0o644 });
}

/**
 * Removes a task's own directory. One owned by another user is emptied with that user's rights,
 * then the daemon removes the empty directory: root walking a tree its owner can still change
 * (another task of the same tenant, or a process that escaped without a cgroup) could be led by
 * a directory swapped for a symlink mid-walk into deleting anything; the owner's own rights can
 * only delete what the owner could delete anyway. The task's wrapper has usually emptied it
 * already when its command ended (native/exec/sandbox.c sandbox_clean_own_dir: as the user's
 * file-system ids, no process started), all but the region the daemon reads last: that file
 * and the directory go here without a walk (a name in a directory only root can rename is
 * unlinked, never followed). Anything more (a task that left more than the wrapper's bound,
 * or a process of the task that wrote on after its command ended) is emptied by `rm -rf`
 * running as that user: a spawn, which used to be every ended task's.
 */
export async function removeOwnDir(dir: string, runAs: StartAs = runAsWithNode): Promise<void> {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) throw new Error(`${dir} is not a directory`);
  const me = process.getuid?.() ?? 0;
  if (st.uid === me) return rm(dir, { recursive: true, force: true });
  if (await removeEmptied(dir)) return;
  // Its rm cannot remove `dir` itself (the parent is the daemon's); it empties it.
  await runAs([RM, '-rf', '--', dir], { uid: st.uid, gid: st.gid }).catch(() => undefined);
  await rmdir(dir);
}

/** The region and the directory, when that is all there is (the wrapper emptied the rest); false: more is left. */
async function removeEmptied(dir: string): Promise<boolean> {
  try {
    await unlink(join(dir, 'region'));
  } catch (err) {
    // ENOENT: a task that never used CUDA; anything else (a directory by that name): rm's to remove.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
  }
  try {
    await rmdir(dir);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return true;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw err;
  }
}

/** Runs a program as a user, to its end; the daemon's is its spawner (Sandbox.useStarter). */
export type StartAs = (argv: readonly string[], user: { readonly uid: number; readonly gid: number }) => Promise<void>;

const RM = ['/usr/bin/rm', '/bin/rm'].find((p) => existsSync(p)) ?? 'rm';

/** Node's spawn: for a sandbox that has no spawner (tests, tools). */
function runAsWithNode(argv: readonly string[], user: { readonly uid: number; readonly gid: number }): Promise<void> {
  return new Promise<void>((resolve) => {
    const child = spawn(argv[0] ?? RM, argv.slice(1), { uid: user.uid, gid: user.gid, stdio: 'ignore' });
    child.once('error', () => resolve());
    child.once('exit', () => resolve());
  });
}

/**
 * Creates `dir` (and parents) the daemon's (root's) and 0711: others may pass through to their
 * own task's directory, never list it (`mode` 0755: the compute boards' directory, which every
 * task lists). Refused when a part we create exists as someone else's or as a link.
 */
function sharedRootDir(dir: string, mode = 0o711): string {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const me = process.getuid?.() ?? 0;
  for (const d of [dirname(dir), dir]) {
    const st = lstatSync(d);
    if (!st.isDirectory() || st.uid !== me) throw new GsError(ErrorCodes.forbidden, `sandbox.taskDir: ${d} is not a directory of the daemon's user (uid ${me}); refusing to put tasks' files there`);
    const want = d === dir ? mode : 0o711;
    if ((st.mode & 0o7777) !== want) chmodSync(d, want);
  }
  return dir;
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
