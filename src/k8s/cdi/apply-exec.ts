/**
 * Performs a ProcessPlan (apply.ts) for real, as root, without a container runtime: the host's
 * root filesystem stands for the image, and the container's view is a private mount namespace
 * (`unshare --mount --propagation private`) in which the plan's mounts are made, so nothing of
 * them (the mounted /etc/ld.so.preload above all) is seen outside. Then the command is exec'd
 * with exactly the plan's environment (`env -i`) and supplementary groups (`setpriv --groups`).
 *
 * Where it differs from a runtime, it says so rather than pretend:
 * - Mount targets that do not exist are created on the host (a runtime creates them in the
 *   image's rootfs), each recorded and removed afterwards if still empty.
 * - Device nodes are the host's own /dev: a node whose container path is its host path is
 *   checked (exists, type, major/minor when given); one at another path is bind-mounted there.
 *   There is no device cgroup, so cgroup permissions, and fileMode/uid/gid, are listed, not applied.
 * - Hooks run in their phase with the OCI state on stdin: prestart and createRuntime before the
 *   namespace exists, createContainer and startContainer inside it before the exec, poststart
 *   after the start, poststop after the exit. A failing hook before the start fails the start.
 * - /etc/ld.so.preload is mounted last: every program started in the namespace after it (the
 *   mount commands included) would load the preloaded library.
 */
import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, lstatSync, mkdirSync, rmdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fail, ok, type Result } from '../../domain/result.js';
import type { CdiHookName } from './apply-spec.js';
import type { PlanDeviceNode, PlanHook, PlanMount, ProcessPlan } from './apply.js';

const PRELOAD_FILE = '/etc/ld.so.preload';
/** Mount options that are flags of the bind's remount; the rest (propagation, rw, bind itself) need nothing here. */
const REMOUNT_FLAGS = new Set(['ro', 'nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'relatime', 'strictatime']);

/** The programs the executor needs, by absolute path. */
export interface ExecTools {
  readonly unshare: string;
  readonly mount: string;
  readonly bash: string;
  readonly env: string;
  readonly setpriv: string | null;
  readonly timeout: string | null;
}

/** Why this machine cannot perform plans (not root, a tool missing), or the tools to do it with. */
export function execTools(path = process.env['PATH'] ?? ''): Result<ExecTools> {
  if (process.getuid?.() !== 0) return fail('executor', 'unsupported', `performing a container's mounts needs root (a private mount namespace and bind mounts); running as uid ${process.getuid?.() ?? 'unknown'}`);
  const find = (name: string): string | null => {
    for (const dir of path.split(delimiter)) {
      if (dir === '') continue;
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch {
        // not in this directory
      }
    }
    return null;
  };
  const tools = { unshare: find('unshare'), mount: find('mount'), bash: find('bash'), env: find('env'), setpriv: find('setpriv'), timeout: find('timeout') };
  const missing = (['unshare', 'mount', 'bash', 'env'] as const).filter((t) => tools[t] === null);
  if (missing.length > 0) return fail('executor', 'unsupported', `${missing.join(', ')} not found on PATH (${path}); util-linux's unshare and mount, bash and coreutils' env are needed`);
  const probe = spawnSync(tools.unshare ?? 'unshare', ['--mount', '--propagation', 'private', 'true'], { encoding: 'utf8' });
  if (probe.status !== 0) return fail('executor', 'unsupported', `unshare --mount does not work here: ${(probe.stderr || probe.error?.message || `exit ${probe.status}`).trim()}`);
  return ok({ ...(tools as ExecTools & Record<'unshare' | 'mount' | 'bash' | 'env', string>) });
}

/** What checking a plan's device nodes found. */
export interface DeviceCheck {
  /** Nodes present with the type and numbers the plan gives. */
  readonly present: readonly string[];
  /** Host paths that do not exist (a runtime refuses to start; `missing: 'report'` lists them). */
  readonly missing: readonly string[];
  /** What a runtime would do that this executor cannot (no device cgroup). */
  readonly notEnforced: readonly string[];
}

/** Checks a plan's device nodes against the host's /dev. */
export function checkDeviceNodes(plan: ProcessPlan, missing: 'fail' | 'report' = 'fail'): Result<DeviceCheck> {
  const present: string[] = [];
  const gone: string[] = [];
  const notEnforced: string[] = [];
  for (const d of plan.deviceNodes) {
    let st;
    try {
      st = statSync(d.hostPath);
    } catch {
      if (missing === 'fail') return fail(`deviceNodes ${d.path}`, 'unknownValue', `host device ${d.hostPath} does not exist (a runtime would refuse to start the container)`);
      gone.push(d.hostPath);
      continue;
    }
    const type = st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : null;
    const want = d.type === 'u' ? 'c' : d.type;
    if (type === null || (want !== '' && want !== type)) return fail(`deviceNodes ${d.path}`, 'conflict', `host path ${d.hostPath} is ${type === null ? 'not a device node' : `a type ${type} device`}${want === '' ? '' : `, not type ${want}`}`);
    const major = Math.floor(st.rdev / 256) & 0xfff;
    const minor = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
    if (d.major !== null && d.major !== 0 && (d.major !== major || (d.minor ?? 0) !== minor)) {
      return fail(`deviceNodes ${d.path}`, 'conflict', `host device ${d.hostPath} is ${major}:${minor}, the edit says ${d.major}:${d.minor ?? 0}`);
    }
    present.push(d.hostPath);
    notEnforced.push(...deviceLimits(d));
  }
  return ok({ present, missing: gone, notEnforced });
}

function deviceLimits(d: PlanDeviceNode): string[] {
  const out = [`${d.path}: cgroup permissions "${d.permissions || 'none'}"`];
  if (d.fileMode !== null || d.uid !== null || d.gid !== null) out.push(`${d.path}: fileMode/uid/gid (the host's node is used as it is)`);
  return out;
}

/** Mount targets created on the host for some plans; remove() takes back what is still empty. */
export interface MountTargets {
  readonly created: readonly string[];
  remove(): void;
}

/** Creates the missing mount targets of `plans` (a file where the source is a file, else a directory). */
export function createMountTargets(plans: readonly ProcessPlan[]): Result<MountTargets> {
  const created: string[] = [];
  const remove = (): void => {
    for (const p of [...created].reverse()) {
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) rmdirSync(p);
        else if (st.isFile() && st.size === 0) unlinkSync(p);
      } catch {
        // gone already, or not empty: someone else's now
      }
    }
  };
  const ensureDir = (dir: string): void => {
    if (existsSync(dir)) return;
    ensureDir(dirname(dir));
    mkdirSync(dir);
    created.push(dir);
  };
  for (const { source, destination } of plans.flatMap(bindTargets)) {
    const bad = badPath(destination);
    if (bad !== null) {
      remove();
      return fail(`mounts ${destination}`, 'malformed', bad);
    }
    if (existsSync(destination)) continue;
    try {
      const isDir = !existsSync(source) || statSync(source).isDirectory();
      ensureDir(isDir ? destination : dirname(destination));
      if (!isDir) {
        writeFileSync(destination, '', { flag: 'wx' });
        created.push(destination);
      }
    } catch (e) {
      remove();
      return fail(`mounts ${destination}`, 'conflict', `cannot create the mount target: ${(e as Error).message}`);
    }
  }
  return ok({ created, remove });
}

function bindTargets(plan: ProcessPlan): { source: string; destination: string }[] {
  return [...plan.mounts, ...plan.deviceNodes.filter((d) => d.hostPath !== d.path).map((d) => ({ source: d.hostPath, destination: d.path }))];
}

function badPath(p: string): string | null {
  if (!p.startsWith('/')) return 'a container path is absolute';
  if (p.split('/').includes('..')) return 'a container path has no ".." part';
  return null;
}

/** Shell-quotes one word for bash. */
function q(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

function mountCommands(m: PlanMount, tools: ExecTools): string[] {
  const isBind = m.type === 'bind' || m.options.includes('bind') || m.options.includes('rbind');
  if (!isBind) return [`${q(tools.mount)} ${m.type ? `-t ${q(m.type)} ` : ''}${m.options.length > 0 ? `-o ${q(m.options.join(','))} ` : ''}${q(m.source)} ${q(m.destination)}`];
  const flags = m.options.filter((o) => REMOUNT_FLAGS.has(o));
  const bind = `${q(tools.mount)} ${m.options.includes('rbind') ? '--rbind' : '--bind'} ${q(m.source)} ${q(m.destination)}`;
  return flags.length === 0 ? [bind] : [bind, `${q(tools.mount)} -o ${q(['remount', 'bind', ...flags].join(','))} ${q(m.destination)}`];
}

function hookCommand(phase: CdiHookName, h: PlanHook, tools: ExecTools): string {
  const argv0 = h.args[0] ?? h.path;
  const run = [q(tools.env), '-i', ...h.env.map(q), ...(h.timeoutSeconds !== null && tools.timeout !== null ? [q(tools.timeout), String(h.timeoutSeconds)] : []),
    q(tools.bash), '-c', q('exec -a "$0" "$@"'), q(argv0), q(h.path), ...h.args.slice(1).map(q)].join(' ');
  return `printf '%s' "\${STATE_${phase}/__PID__/$$}" | ${run} || { echo ${q(`gpushare-cdi: ${phase} hook ${h.path} failed`)} >&2; exit 125; }`;
}

/** The bash script that runs inside the private mount namespace and becomes the container's process. */
export function executionScript(plan: ProcessPlan, tools: ExecTools, state: (phase: CdiHookName) => string): string {
  const mounts = [...plan.mounts.filter((m) => m.destination !== PRELOAD_FILE),
    ...plan.deviceNodes.filter((d) => d.hostPath !== d.path).map((d) => ({ source: d.hostPath, destination: d.path, type: 'bind', options: ['bind'] })),
    ...plan.mounts.filter((m) => m.destination === PRELOAD_FILE)];
  const inside: CdiHookName[] = ['createContainer', 'startContainer'];
  const lines = ['set -eu', ...inside.map((p) => `STATE_${p}=${q(state(p))}`), ...mounts.flatMap((m) => mountCommands(m, tools))];
  for (const phase of inside) lines.push(...plan.hooks[phase].map((h) => hookCommand(phase, h, tools)));
  const groups = tools.setpriv === null ? [] : [q(tools.setpriv), plan.additionalGids.length === 0 ? '--clear-groups' : `--groups=${plan.additionalGids.join(',')}`, '--'];
  // Fd 3 tells the executor the process is starting (its poststart hooks wait for that); closed before the exec.
  lines.push('printf started >&3', 'exec 3>&-');
  lines.push(['exec', q(tools.env), '-i', ...plan.env.map(q), ...groups, ...plan.argv.map(q)].join(' '));
  return `${lines.join('\n')}\n`;
}

export interface RunOptions {
  /** The container's id in the hooks' OCI state. */
  readonly id: string;
  /** The OCI bundle directory in the hooks' state; default the current directory. */
  readonly bundle?: string;
  /** Kill the process after this long (ms). */
  readonly timeoutMs?: number;
}

export interface RunResult {
  readonly pid: number | null;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Hooks after the start that failed (a runtime logs these and carries on). */
  readonly hookWarnings: readonly string[];
}

/**
 * Starts the plan's process in a private mount namespace and waits for it. Prestart and
 * createRuntime hooks run first (a failure is an error result, nothing started); the mount
 * targets must exist (createMountTargets).
 */
export async function runPlan(plan: ProcessPlan, tools: ExecTools, options: RunOptions): Promise<Result<RunResult>> {
  if (plan.additionalGids.length > 0 && tools.setpriv === null) return fail('additionalGids', 'unsupported', 'setpriv (util-linux) is needed to set the supplementary groups and is not on PATH');
  // The pid of a process started inside the script is the script's own ($$, exec keeps it): a placeholder there.
  const state = (status: string, pid: number | 'script' | null): string => {
    const json = JSON.stringify({ ociVersion: '1.2.0', id: options.id, status, ...(pid === null ? {} : { pid: pid === 'script' ? -1 : pid }), bundle: options.bundle ?? process.cwd(), annotations: plan.annotations });
    return pid === 'script' ? json.replace('"pid":-1', '"pid":__PID__') : json;
  };
  for (const phase of ['prestart', 'createRuntime'] as const) {
    for (const h of plan.hooks[phase]) {
      const r = await runHook(h, state('creating', null));
      if (r !== null) return fail(`hooks.${phase}`, 'conflict', `${h.path} failed: ${r}`);
    }
  }
  const script = executionScript(plan, tools, (phase) => state(phase === 'createContainer' ? 'creating' : 'created', 'script'));
  const child = spawn(tools.unshare, ['--mount', '--propagation', 'private', '--', tools.bash, '-c', script], {
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' }, stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
  });
  // Settles with the spawn's error rather than rejecting: nothing awaits it before the poststart hooks.
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null } | Error>((resolve) => {
    child.on('error', resolve);
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  const started = new Promise<boolean>((resolve) => {
    const signal = child.stdio[3];
    if (signal === null || signal === undefined) return resolve(false);
    let said = '';
    signal.on('data', (b: Buffer) => (said += b.toString()));
    signal.on('close', () => resolve(said === 'started'));
    signal.on('error', () => resolve(false));
  });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const timer = options.timeoutMs === undefined ? null : setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const warnings: string[] = [];
  // Poststart hooks run once the process is started: never when the script failed before its exec.
  const didStart = await started;
  for (const h of didStart ? plan.hooks.poststart : []) {
    const r = await runHook(h, state('running', child.pid ?? null));
    if (r !== null) warnings.push(`poststart hook ${h.path} failed: ${r}`);
  }
  const exit = await exited;
  if (timer !== null) clearTimeout(timer);
  if (exit instanceof Error) return fail('executor', 'unsupported', `cannot start ${tools.unshare}: ${exit.message}`);
  for (const h of plan.hooks.poststop) {
    const r = await runHook(h, state('stopped', child.pid ?? null));
    if (r !== null) warnings.push(`poststop hook ${h.path} failed: ${r}`);
  }
  return ok({ pid: child.pid ?? null, code: exit.code, signal: exit.signal, stdout, stderr, hookWarnings: warnings });
}

/** Runs one hook with the state on stdin; null when it succeeded, else why not. */
function runHook(h: PlanHook, state: string): Promise<string | null> {
  return new Promise((resolve) => {
    const env = Object.fromEntries(h.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const child = spawn(h.path, h.args.slice(1), { argv0: h.args[0] ?? h.path, env, stdio: ['pipe', 'ignore', 'pipe'], ...(h.timeoutSeconds === null ? {} : { timeout: h.timeoutSeconds * 1000 }) });
    let err = '';
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', (e) => resolve(e.message));
    child.on('close', (code, signal) => resolve(code === 0 ? null : `${signal !== null ? `killed by ${signal}` : `exit ${code}`}${err ? `: ${err.trim()}` : ''}`));
    child.stdin.on('error', () => undefined); // a hook need not read its state
    child.stdin.end(state);
  });
}
