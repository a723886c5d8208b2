/**
 * Tenant isolation, the pure part: which user a task runs as, the environment it starts from,
 * and the checks on a configured uid range. No I/O (hashing aside): the files read (/etc/passwd, /etc/group,
 * /etc/subuid) come in as text; sandbox.ts is the shell that reads them and acts.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ErrorCodes, GsError } from '../domain/index.js';

/** The unprivileged user a task runs as. */
export interface TaskUser {
  readonly uid: number;
  readonly gid: number;
  /** Supplementary groups (a configured user's, from /etc/group); empty for an allocated one. */
  readonly groups: readonly number[];
  /** USER and LOGNAME. */
  readonly name: string;
  /** The user's home from /etc/passwd; null: the task's own directory is its home. */
  readonly home: string | null;
}

/** How a tenant's user is configured: a local account by name, or numeric ids (for NSS/LDAP users). */
export type RunAs = { readonly user: string } | { readonly uid: number; readonly gid: number; readonly groups?: readonly number[] | undefined };

/**
 * The default range tasks' users are allocated from, one uid per tenant, never reused. Above
 * what useradd hands out as subordinate ids (SUB_UID_MAX 600100000) and systemd-nspawn's
 * container range (up to 0x6FFFFFFF), below 2^31 (some tools read uids as signed).
 */
export const DEFAULT_UID_BASE = 1_900_000_000;
export const DEFAULT_UID_COUNT = 65_536;

/**
 * Where tasks' own directories go when they run as other users: on disk (their HOME may get
 * gigabytes of caches, too much for /run's memory), outside the state directory (whose
 * ancestors, /root for a root daemon's default, other users cannot pass through).
 */
export const DEFAULT_TASK_DIR = '/var/lib/gpushare/tasks';

/**
 * The part of a shared directory (the task directory, the cgroup root) that is this daemon's:
 * two daemons on one machine (or the tests' many) never clean up each other's tasks.
 */
export function daemonKey(stateDir: string): string {
  return `state-${createHash('sha256').update(stateDir).digest('hex').slice(0, 12)}`;
}

/** The PATH a task gets when it sends none (sudo's secure_path). */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
  readonly home: string;
}

/** /etc/passwd lines (`name:x:uid:gid:gecos:home:shell`); malformed lines are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f.length < 7 || !/^\d+$/.test(f[2] ?? '') || !/^\d+$/.test(f[3] ?? '')) continue;
    out.push({ name: f[0] ?? '', uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '' });
  }
  return out;
}

/** /etc/group lines (`name:x:gid:member,member`): the gids that list `user` as a member. */
export function groupsOf(user: string, groupText: string): number[] {
  const gids: number[] = [];
  for (const line of groupText.split('\n')) {
    const f = line.split(':');
    if (f.length < 4 || !/^\d+$/.test(f[2] ?? '')) continue;
    if ((f[3] ?? '').split(',').includes(user)) gids.push(Number(f[2]));
  }
  return gids;
}

/** A configured `runAs` as the user the task runs as; root (uid or gid 0) is refused. */
export function resolveRunAs(runAs: RunAs, passwd: readonly PasswdEntry[], groupText: string, where: string): TaskUser {
  if ('user' in runAs) {
    const e = passwd.find((p) => p.name === runAs.user);
    if (!e) throw new GsError(ErrorCodes.invalidArgument, `${where}: no user "${runAs.user}" in /etc/passwd (for a user known only to NSS/LDAP, give "uid" and "gid")`);
    const user: TaskUser = { uid: e.uid, gid: e.gid, groups: [...new Set(groupsOf(e.name, groupText))].filter((g) => g !== e.gid), name: e.name, home: e.home || null };
    return checkUnprivileged(user, where);
  }
  const known = passwd.find((p) => p.uid === runAs.uid);
  return checkUnprivileged({ uid: runAs.uid, gid: runAs.gid, groups: [...(runAs.groups ?? [])], name: known?.name ?? String(runAs.uid), home: known?.home || null }, where);
}

function checkUnprivileged(user: TaskUser, where: string): TaskUser {
  if (user.uid === 0 || user.gid === 0 || user.groups.includes(0)) throw new GsError(ErrorCodes.invalidArgument, `${where}: tasks never run as root (uid 0) or with group 0; name an unprivileged user`);
  return user;
}

/** The user a tenant's tasks get from the range (null: tasks of no tenant): its uid is also its only group. */
export function allocatedUser(tenant: string | null, uid: number): TaskUser {
  return { uid, gid: uid, groups: [], name: tenant === null ? 'gpushare' : `gpushare-${tenant}`, home: null };
}

/** The lowest uid of [base, base+count) not in `taken`; null when the range is full. */
export function nextFreeUid(base: number, count: number, taken: Iterable<number>): number | null {
  const used = new Set(taken);
  for (let uid = base; uid < base + count; uid++) if (!used.has(uid)) return uid;
  return null;
}

/**
 * Why the range [base, base+count) is unsafe to allocate from: a local account or a
 * subordinate-id range (/etc/subuid, /etc/subgid) inside it would share files with a tenant.
 * Empty: safe.
 */
export function rangeConflicts(base: number, count: number, passwd: readonly PasswdEntry[], subIds: string): string[] {
  const end = base + count;
  const problems: string[] = [];
  for (const p of passwd) if (p.uid >= base && p.uid < end) problems.push(`user ${p.name} has uid ${p.uid}`);
  for (const line of subIds.split('\n')) {
    const f = line.trim().split(':');
    if (f.length !== 3 || !/^\d+$/.test(f[1] ?? '') || !/^\d+$/.test(f[2] ?? '')) continue;
    const from = Number(f[1]);
    const to = from + Number(f[2]);
    if (from < end && to > base) problems.push(`subordinate ids ${from}-${to - 1} belong to ${f[0]}`);
  }
  return problems;
}

/** Locale and time zone: harmless to share, and what makes a task's output read as the operator expects. */
const LOCALE_VARIABLE = /^(LANG|LANGUAGE|TZ|LC_[A-Z]+)$/;

/**
 * The environment a task starts from, before its own variables and its slice
 * (launcher.ts taskEnvironment): a PATH, its user's HOME, USER and LOGNAME, the daemon's
 * locale, and the daemon variables the operator passed on by name (`passEnv`). Nothing else of
 * the daemon's environment: it may hold tokens and other secrets.
 */
export function baseEnvironment(user: { readonly name: string; readonly home: string }, daemonEnv: Readonly<Record<string, string | undefined>>, passEnv: readonly string[]): Record<string, string> {
  const env: Record<string, string> = { PATH: DEFAULT_PATH };
  for (const [k, v] of Object.entries(daemonEnv)) if (v !== undefined && (LOCALE_VARIABLE.test(k) || passEnv.includes(k))) env[k] = v;
  env['HOME'] = user.home;
  env['USER'] = user.name;
  env['LOGNAME'] = user.name;
  return env;
}

/**
 * The variables that ask gpushare-exec for the sandbox (native/exec/sandbox.h); the daemon adds
 * them last, after the task's own environment, which may never set them.
 */
export function wrapperVariables(user: TaskUser | null, cgroup: string | null, ownDir: string | null): Record<string, string> {
  const env: Record<string, string> = {};
  if (cgroup !== null) env['GPUSHARE_EXEC_CGROUP'] = cgroup;
  if (user !== null) {
    env['GPUSHARE_EXEC_UID'] = String(user.uid);
    env['GPUSHARE_EXEC_GID'] = String(user.gid);
    env['GPUSHARE_EXEC_GROUPS'] = user.groups.join(',');
    if (ownDir !== null) env['GPUSHARE_EXEC_OWN_DIR'] = ownDir;
  }
  return env;
}

/**
 * A GPU's compute board for one user (native/shim/COMPUTE.md "Boards per user"), named as
 * libgpushare names it: the UUID as the driver gives it, "GPU-" and lower-case hex, a MIG
 * device's too (the driver reports a MIG device by its MIG UUID's bytes).
 */
export function boardFile(dir: string, uuid: string, uid: number): string {
  return join(dir, `gpushare-compute-GPU-${uuid.replace(/^(GPU|MIG)-/i, '').toLowerCase()}.u${uid}`);
}

/**
 * The variables that put a task's compute on its user's own boards, one per GPU of the task,
 * which gpushare-exec makes for that user in `dir` (root's): the task can write no other user's
 * board, and reads theirs without mapping them. None for a task without GPUs.
 */
export function boardVariables(dir: string, uuids: readonly string[], uid: number): Record<string, string> {
  if (uuids.length === 0) return {};
  return { GPUSHARE_COMPUTE_DIR: dir, GPUSHARE_COMPUTE_BOARD: 'per-user', GPUSHARE_EXEC_BOARDS: uuids.map((u) => boardFile(dir, u, uid)).join(':') };
}

/** libgpushare's priorities as a board and a grant hold them (native/shim/gs_config.h gs_priority). */
const GRANT_PRIORITY: Readonly<Record<string, number>> = { low: 0, normal: 1, high: 2 };

/**
 * What the task is entitled to on each of its boards' GPUs, for gpushare-exec to write into the
 * GPU's grants as root before the command exists (native/exec/grant.h, gpushare_board.h
 * "Grants"): "SHARE_PPM,PRIORITY,POLICY", from the environment the daemon gives the task, as
 * libgpushare reads it there (native/shim/compute.c dev_setup: no limit is the whole GPU,
 * work-conserving; a limit is hard unless GPUSHARE_COMPUTE_POLICY says share). Other tenants'
 * libraries lay the task out from this alone: what the task writes on its board later cannot
 * change it. None without boards, or for an SM partition (no time slices there).
 */
export function grantVariable(env: Readonly<Record<string, string>>): Record<string, string> {
  if (env['GPUSHARE_EXEC_BOARDS'] === undefined || env['GPUSHARE_ISOLATION'] === 'sm-partition') return {};
  const limit = Number(env['GPUSHARE_COMPUTE_LIMIT'] ?? '0');
  if (!Number.isInteger(limit) || limit < 0 || limit > 100) throw new Error(`the compute limit ${env['GPUSHARE_COMPUTE_LIMIT']} is not a whole percent`);
  const share = limit > 0 ? limit * 10_000 : 1_000_000;
  const priority = GRANT_PRIORITY[env['GPUSHARE_PRIORITY'] ?? 'normal'] ?? 1;
  const policy = limit > 0 && env['GPUSHARE_COMPUTE_POLICY'] !== 'share' ? 1 : 2;
  return { GPUSHARE_EXEC_GRANT: `${share},${priority},${policy}` };
}

/** What `canEnter` needs of a directory: stat's owner, group and mode. */
export interface DirStat {
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
  readonly isDirectory: boolean;
}

/**
 * Whether `user` could make `path` its working directory: every directory from / down is one it
 * may search (x), by the mode bits the kernel checks first (owner, else group, else others;
 * ACLs are not read). The walk stops at the first directory it may not search, so what lies
 * below stays unknown to whoever asks: a root daemon answering "no such directory" for paths its
 * tenant cannot see anyway would tell the tenant what exists there. `statOf` follows links, as
 * the kernel does when it enters them; null: no such entry.
 */
export function canEnter(path: string, user: Pick<TaskUser, 'uid' | 'gid' | 'groups'>, statOf: (path: string) => DirStat | null): boolean {
  if (!path.startsWith('/')) return false;
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let at = '';
  for (let i = 0; i <= parts.length; i += 1) {
    if (i > 0) {
      const part = parts[i - 1] as string;
      // `..` is resolved by the kernel against the directory reached; the walk does the same.
      at = part === '..' ? at.slice(0, Math.max(0, at.lastIndexOf('/'))) : `${at}/${part}`;
    }
    const st = statOf(at === '' ? '/' : at);
    if (st === null || !st.isDirectory) return false;
    if (user.uid === 0) continue;
    const bit = st.uid === user.uid ? 0o100 : st.gid === user.gid || user.groups.includes(st.gid) ? 0o010 : 0o001;
    if ((st.mode & bit) === 0) return false;
  }
  return true;
}
