/**
 * The daemon's own NVIDIA MPS control daemon. SM partitions only run side by side under MPS:
 * without it the GPU time-slices between processes, so two 50% partitions each run at half
 * speed (docs/benchmarks.md, "SM-partition mode"). One control daemon per gpushare daemon,
 * with private pipe and log directories under the state directory, so it is ours alone: other
 * users' CUDA programs (which look in /tmp/nvidia-mps) never become its clients by accident.
 * sm-partition tasks get its pipe directory in CUDA_MPS_PIPE_DIRECTORY; nothing else does.
 * The GPU's compute mode is never changed (MPS runs in the Default mode beside other processes).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { Logger } from 'pino';
import { ErrorCodes, GsError } from '../domain/index.js';
import { ensurePrivateDir } from './paths.js';

/** `auto`: use MPS for sm-partition tasks on real GPUs when the binary is there; `on`: always (an error if it cannot); `off`: never. */
export const MPS_MODES = ['auto', 'on', 'off'] as const;
export type MpsMode = (typeof MPS_MODES)[number];

export const MPS_CONTROL = 'nvidia-cuda-mps-control';
/** How long one control command may take before it is treated as failed. */
const COMMAND_TIMEOUT_MS = 15_000;

export interface MpsOptions {
  readonly mode: MpsMode;
  /** Where the GPUs come from: on simulated GPUs, `auto` means no MPS. */
  readonly backendKind: string;
  /** The directory that holds `pipe/` and `log/` (the daemon's state directory's `mps/`). */
  readonly dir: string;
  /** The environment the control daemon starts with (PATH finds the binary). */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
}

export interface MpsStatus {
  readonly mode: MpsMode;
  /** Whether sm-partition tasks can get MPS here. */
  readonly available: boolean;
  readonly running: boolean;
  readonly pipeDir: string;
  readonly logDir: string;
  /** Why it is unavailable, or why the last start failed. */
  readonly problem: string | null;
  readonly binary: string | null;
}

export class MpsControl {
  readonly pipeDir: string;
  readonly logDir: string;
  private readonly binary: string | null;
  private readonly unavailable: string | null;
  private running = false;
  private problem: string | null = null;

  /** Throws GS_ERR_NOT_FOUND when `on` is asked and the binary is not on PATH. */
  constructor(private readonly options: MpsOptions) {
    this.pipeDir = join(options.dir, 'pipe');
    this.logDir = join(options.dir, 'log');
    this.binary = findOnPath(MPS_CONTROL, options.env['PATH']);
    if (options.mode === 'off') this.unavailable = 'MPS is off (mps: off)';
    else if (options.mode === 'auto' && options.backendKind !== 'nvml') this.unavailable = `the ${options.backendKind} backend has no MPS (mps: auto uses it on real GPUs only; mps: on forces it)`;
    else if (this.binary === null) {
      const why = `${MPS_CONTROL} is not on PATH (${options.env['PATH'] ?? 'PATH is not set'}); it comes with the NVIDIA driver's utilities`;
      if (options.mode === 'on') throw new GsError(ErrorCodes.mpsUnavailable, `mps: on, but ${why}. Install it, put it on the daemon's PATH, or use mps: auto or off (SM partitions then time-slice with each other)`);
      this.unavailable = why;
    } else this.unavailable = null;
  }

  status(): MpsStatus {
    return {
      mode: this.options.mode,
      available: this.unavailable === null,
      running: this.running,
      pipeDir: this.pipeDir,
      logDir: this.logDir,
      problem: this.unavailable ?? this.problem,
      binary: this.binary,
    };
  }

  /**
   * The pipe directory for an sm-partition task, starting the control daemon first if it is
   * not running (or adopting the one a previous gpushare daemon left for its running tasks).
   * `pipeDir: null` with the reason when MPS cannot be had.
   */
  ensure(): { pipeDir: string | null; problem: string | null } {
    if (this.unavailable !== null || this.binary === null) return { pipeDir: null, problem: this.unavailable };
    if (this.running) return { pipeDir: this.pipeDir, problem: null };
    ensurePrivateDir(this.options.dir);
    ensurePrivateDir(this.pipeDir);
    ensurePrivateDir(this.logDir);
    if (this.answers()) {
      this.running = true;
      this.options.logger.info({ pipeDir: this.pipeDir }, 'MPS control daemon already running (left for running tasks): adopted');
      return { pipeDir: this.pipeDir, problem: null };
    }
    const r = spawnSync(this.binary, ['-d'], { env: this.env(), encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'pipe'] });
    if (r.error !== undefined || r.status !== 0) {
      const detail = r.error?.message ?? `exit ${r.status ?? r.signal}${r.stderr.trim() ? `: ${r.stderr.trim()}` : ''}`;
      this.problem = `${MPS_CONTROL} -d failed (${detail}); see ${this.logDir}/control.log`;
      this.options.logger.error({ problem: this.problem }, 'could not start the MPS control daemon');
      return { pipeDir: null, problem: this.problem };
    }
    this.running = true;
    this.problem = null;
    this.options.logger.info({ pipeDir: this.pipeDir, logDir: this.logDir }, 'MPS control daemon started');
    return { pipeDir: this.pipeDir, problem: null };
  }

  /**
   * Stops the control daemon (`quit`), unless tasks still use it: those outlive the gpushare
   * daemon (it never stops tasks), and the next start adopts the control daemon with them.
   */
  stop(clientsLeft: number): void {
    if (!this.running || this.binary === null) return;
    if (clientsLeft > 0) {
      this.options.logger.info({ tasks: clientsLeft, pipeDir: this.pipeDir }, 'MPS control daemon left running for sm-partition tasks that go on running');
      return;
    }
    const r = this.control('quit');
    this.running = false;
    if (!r.ok) this.options.logger.warn({ problem: r.why }, 'MPS control daemon did not take quit');
    else this.options.logger.info({ pipeDir: this.pipeDir }, 'MPS control daemon stopped');
  }

  /** Whether a control daemon answers on our pipe directory. */
  private answers(): boolean {
    // Its control socket is the first sign; a stale one (killed daemon) does not answer.
    return existsSync(join(this.pipeDir, 'control')) && this.control('get_server_list').ok;
  }

  private control(command: string): { ok: boolean; why: string } {
    if (this.binary === null) return { ok: false, why: 'no binary' };
    const r = spawnSync(this.binary, [], { env: this.env(), input: `${command}\n`, encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS });
    if (r.error !== undefined) return { ok: false, why: r.error.message };
    return r.status === 0 ? { ok: true, why: '' } : { ok: false, why: `exit ${r.status ?? r.signal}: ${r.stderr.trim() || r.stdout.trim()}` };
  }

  private env(): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.options.env)) if (v !== undefined) env[k] = v;
    env['CUDA_MPS_PIPE_DIRECTORY'] = this.pipeDir;
    env['CUDA_MPS_LOG_DIRECTORY'] = this.logDir;
    return env;
  }
}

/** The first executable `name` on `path`, or null. */
export function findOnPath(name: string, path: string | undefined): string | null {
  for (const dir of (path ?? '').split(delimiter)) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return null;
}
