/**
 * Starting a placed task: its environment (the slice as libgpushare reads it) and the process,
 * run under gpushare-exec in its own process group with its output in log files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCodes, GsError } from '../domain/index.js';
import type { Spawned, Spawner } from './spawner.js';
import type { Task, TaskGpu, TaskSmRange } from '../contract/task.js';

/** Native files the launcher uses; both are built by `npm run build` (make -C native). */
export interface NativePaths {
  /** The per-task wrapper; required. */
  readonly exec: string;
  /** libgpushare.so; null runs tasks without enforcement (the daemon says so at start). */
  readonly preload: string | null;
}

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Finds the native files next to this package (build/native/), or where the environment says. */
export function findNativePaths(env: Readonly<Record<string, string | undefined>> = process.env): NativePaths {
  const exec = env['GPUSHARE_EXEC_PATH'] ?? join(REPO_ROOT, 'build', 'native', 'gpushare-exec');
  if (!existsSync(exec)) throw new GsError(ErrorCodes.notFound, `the task wrapper ${exec} is missing; build it with \`npm run build\` (make -C native)`);
  const preload = env['GPUSHARE_LIBRARY_PATH'] ?? join(REPO_ROOT, 'build', 'native', 'libgpushare.so');
  return { exec, preload: existsSync(preload) ? preload : null };
}

/** Where a task's files live in the state directory (`claim`: see native/exec/claim.h). */
export function taskFiles(stateDir: string, id: string): { dir: string; stdout: string; stderr: string; region: string; status: string; claim: string } {
  const dir = join(stateDir, 'tasks', id);
  return { dir, stdout: join(dir, 'stdout.log'), stderr: join(dir, 'stderr.log'), region: join(dir, 'region'), status: join(dir, 'exit-status'), claim: join(dir, 'claim') };
}

/**
 * Variables that set a slice, ours and HAMi-core's (native/shim/gs_config.c reads them), and
 * those that ask gpushare-exec for its sandbox (GPUSHARE_EXEC_*): only the daemon sets these.
 */
const SLICE_VARIABLE = /^(GPUSHARE_EXEC_[A-Z_]*|GPUSHARE_(MEMORY_LIMIT|COMPUTE_LIMIT|COMPUTE_ACCOUNTING|COMPUTE_CLOCK|COMPUTE_GRANTS|REGION|PRIORITY|ISOLATION|OVERSUBSCRIBE|SM_OFFSET)|CUDA_DEVICE_(MEMORY_LIMIT|SM_LIMIT)(_\d+)?|CUDA_DEVICE_MEMORY_SHARED_CACHE|CUDA_TASK_PRIORITY)$/;

/** Where an sm-partition task's SMs are, and the MPS daemon that lets partitions run at once (null: none). */
export interface PartitionEnv {
  readonly ranges: readonly TaskSmRange[];
  readonly mpsPipeDir: string | null;
}

/**
 * The environment a task runs with: `base` (its user's, sandbox.ts: never the daemon's own), the
 * task's own on top, then the slice, which always wins (a task cannot raise its own limits by
 * setting them). Exact bytes, so the library's limit is the reservation to the byte.
 */
export function taskEnvironment(
  base: Readonly<Record<string, string | undefined>>,
  task: Task,
  gpus: readonly TaskGpu[],
  computeLimitPercent: number | null,
  partition: PartitionEnv | null = null,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined) env[k] = v;
  Object.assign(env, task.env);
  for (const k of Object.keys(env)) if (SLICE_VARIABLE.test(k)) delete env[k];
  env['GPUSHARE_TASK_ID'] = task.id;
  env['CUDA_VISIBLE_DEVICES'] = gpus.map((g) => g.uuid).join(',');
  if (gpus.length === 0) return env;
  // Devices are renumbered 0..n-1 inside the process, in CUDA_VISIBLE_DEVICES order.
  const sameMemory = gpus.every((g) => g.memoryBytes === gpus[0]?.memoryBytes);
  env['GPUSHARE_MEMORY_LIMIT'] = sameMemory ? String(gpus[0]?.memoryBytes) : gpus.map((g, i) => `${i}=${g.memoryBytes}`).join(',');
  if (computeLimitPercent !== null) {
    env['GPUSHARE_COMPUTE_LIMIT'] = String(computeLimitPercent);
    // what a time-slice limit is a share of (absent in requests stored before it: throughput,
    // the library's default); set by the daemon, as the task's own would set its own limit's meaning
    if (task.request.isolation === 'time-slice') env['GPUSHARE_COMPUTE_ACCOUNTING'] = task.request.computeAccounting ?? 'throughput';
  }
  env['GPUSHARE_PRIORITY'] = libraryPriority(task.priority);
  env['GPUSHARE_ISOLATION'] = task.request.isolation === 'sm-partition' ? 'sm-partition' : 'time-slice';
  env['GPUSHARE_REGION'] = task.regionPath;
  if (partition !== null) {
    // By device ordinal inside the process (CUDA_VISIBLE_DEVICES order), like the limits.
    const offsets = gpus.map((g) => partition.ranges.find((r) => r.uuid === g.uuid)?.offset);
    if (offsets.some((o) => o === undefined)) throw new Error(`task ${task.id}: no SM range for one of its GPUs`);
    env['GPUSHARE_SM_OFFSET'] = offsets.every((o) => o === offsets[0]) ? String(offsets[0]) : offsets.map((o, i) => `${i}=${o}`).join(',');
    // The task's own MPS settings would put it on another server (or none): ours is the one
    // its neighbours' partitions run under.
    delete env['CUDA_MPS_PIPE_DIRECTORY'];
    delete env['CUDA_MPS_LOG_DIRECTORY'];
    if (partition.mpsPipeDir !== null) env['CUDA_MPS_PIPE_DIRECTORY'] = partition.mpsPipeDir;
  }
  return env;
}

/** The wrapper the spawner started: its pid and start time. */
export type Launched = Spawned;

/**
 * Variables the dynamic loader or libc act on in any process that starts with them (glibc's
 * unsecure-envvars.h, and every LD_* and MALLOC_*). gpushare-exec runs as root: a task's
 * LD_PRELOAD under its own name would run the tenant's library as root before the wrapper's main.
 */
const LOADER_VARIABLE = /^(LD_.*|MALLOC_.*|GCONV_PATH|GETCONF_DIR|GLIBC_TUNABLES|HOSTALIASES|LOCALDOMAIN|LOCPATH|NIS_PATH|NLSPATH|RESOLV_HOST_CONF|RES_OPTIONS|TMPDIR|TZDIR)$/;
/** What gpushare-exec's child strips from a renamed variable's name before it execs the command. */
export const TASK_ENV_PREFIX = 'GPUSHARE_EXEC_TASK_ENV_';

/** The wrapper's environment: the task's, with its loader variables renamed (the command gets them back) and our preload. */
export function wrapperEnvironment(env: Readonly<Record<string, string>>, preload: string | null | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[LOADER_VARIABLE.test(k) ? `${TASK_ENV_PREFIX}${k}` : k] = v;
  if (preload) out['GPUSHARE_EXEC_PRELOAD'] = preload;
  return out;
}

/** The wrapper's files for one task: where it writes how the command ended, and its launch claim. */
export interface WrapperFiles {
  readonly status: string;
  readonly claim: string;
}

/**
 * Starts the task through the spawner (spawner.ts): gpushare-exec leads a new session and
 * process group (so kill reaches everything the task starts) and outlives the daemon (output to
 * log files, no pipes back to us). It claims the launch before it runs anything: a second
 * wrapper for the same task runs nothing and exits with EXIT_CLAIM_TAKEN (see
 * native/exec/claim.h). Rejects with SpawnError when nothing runs, SpawnerLostError when that
 * is unknown.
 */
export function launch(task: Task, env: Record<string, string>, native: NativePaths, files: WrapperFiles, spawner: Spawner): Promise<Launched> {
  return spawner.spawn({
    argv: [native.exec, '--claim', files.claim, files.status, '--', ...task.command],
    env: wrapperEnvironment(env, native.preload),
    cwd: task.cwd,
    stdout: task.stdoutPath,
    stderr: task.stderrPath,
  });
}

/** gpushare-exec's exit status when another wrapper holds the task's launch claim (native/exec/claim.h). */
export const EXIT_CLAIM_TAKEN = 120;

/** The process that claimed a task's launch: the wrapper that runs (or ran) its command. */
export interface Claim {
  readonly pid: number;
  readonly startTime: number;
}

/**
 * Who claimed the task's launch; null when nobody did (the command never ran). The file appears
 * whole or not at all; one that does not parse is reported as an error (never taken as "no claim",
 * which would start the command again).
 */
export function readClaim(claimFile: string): Claim | null {
  let text: string;
  try {
    text = readFileSync(claimFile, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const m = /^(\d+) (\d+)\n$/.exec(text);
  if (!m) throw new GsError(ErrorCodes.internal, `the launch claim ${claimFile} is unreadable: ${JSON.stringify(text.slice(0, 40))}`);
  return { pid: Number(m[1]), startTime: Number(m[2]) };
}

/** How a task ended, from the wrapper's status file; null when the wrapper never wrote one. */
export type ExitStatus = { readonly kind: 'exit'; readonly code: number } | { readonly kind: 'signal'; readonly signal: number } | { readonly kind: 'error'; readonly errno: number };

export function readExitStatus(statusFile: string): ExitStatus | null {
  let text: string;
  try {
    text = readFileSync(statusFile, 'utf8');
  } catch {
    return null;
  }
  const m = /^(exit|signal|error) (\d+)\n?$/.exec(text);
  if (!m) return null;
  const n = Number(m[2]);
  return m[1] === 'exit' ? { kind: 'exit', code: n } : m[1] === 'signal' ? { kind: 'signal', signal: n } : { kind: 'error', errno: n };
}

/** libgpushare knows three priorities; the daemon's 0-1000 scale maps onto them in bands around the named levels. */
export function libraryPriority(priority: number): 'low' | 'normal' | 'high' {
  return priority >= 700 ? 'high' : priority <= 300 ? 'low' : 'normal';
}
