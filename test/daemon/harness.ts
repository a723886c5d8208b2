/**
 * A real daemon for tests: `gpushare serve` as a child process on a temporary state directory
 * and a real Unix socket, on the simulated backend, with the real native wrapper and library.
 * Everything a harness starts (daemons, tasks) is stopped by `cleanup()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskBody } from '../../src/contract/schemas.js';
import { Client } from '../../src/cli/client.js';
import { REPO_ROOT } from '../helpers/cli.js';

const BIN = `${REPO_ROOT}bin/gpushare.js`;

export interface CliRun {
  readonly child: ChildProcess;
  readonly done: Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

export class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'gpushare-daemon-'));
  readonly socket = join(this.dir, 'api.sock');
  readonly stateDir = join(this.dir, 'state');
  readonly client = new Client({ kind: 'unix', path: this.socket });
  private daemon: ChildProcess | null = null;
  private daemonLog = '';
  private readonly children = new Set<ChildProcess>();
  /** The uid-range claims its sandboxed daemons left in the default sandbox.taskDir. */
  private readonly uidClaims = new Set<string>();

  /**
   * Starts `gpushare serve` and waits until its API answers. Tasks run as the daemon's user
   * (--sandbox off), whoever runs the tests, unless `extra` says otherwise (sandbox.test.ts).
   */
  async start(extra: readonly string[] = [], env: Readonly<Record<string, string>> = {}, simulate = '1xH100-80GB', listen: readonly string[] = []): Promise<void> {
    const sandbox: string[] = extra.includes('--sandbox') ? [] : ['--sandbox', 'off'];
    // A sandboxed daemon claims its tenants' uid range host-wide (sandbox.ts claimUidRange): test
    // daemons running at once, or beside a real one, each take a range of their own.
    if (extra.includes('--sandbox') && !extra.includes('--config')) {
      const config = join(this.dir, 'sandbox-config.json');
      const uidBase = 1_950_000_000 + randomInt(0, 100_000) * 1_000;
      writeFileSync(config, JSON.stringify({ sandbox: { uidBase, uidCount: 1_000 } }));
      this.uidClaims.add(join('/var/lib/gpushare/tasks', `uids-${uidBase}-1000`));
      sandbox.push('--config', config);
    }
    const d = spawn(process.execPath, [BIN, 'serve', '--backend', 'simulated', '--simulate', simulate, '--state-dir', this.stateDir, '--listen', this.socket, ...listen, '--log-level', 'warn', ...sandbox, ...extra], {
      env: { ...this.env(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.daemon = d;
    this.daemonLog = '';
    d.stdout?.on('data', (b: Buffer) => (this.daemonLog += b.toString()));
    d.stderr?.on('data', (b: Buffer) => (this.daemonLog += b.toString()));
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (d.exitCode !== null) throw new Error(`daemon exited with ${d.exitCode}:\n${this.daemonLog}`);
      try {
        await this.client.json('GET', '/v1/gpus');
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`daemon did not answer within 15 s:\n${this.daemonLog}`);
        await sleep(50);
      }
    }
  }

  get log(): string {
    return this.daemonLog;
  }

  /** Sends the daemon a signal (SIGHUP: reload) without waiting for anything. */
  signal(signal: NodeJS.Signals): void {
    this.daemon?.kill(signal);
  }

  /** Stops the daemon (SIGTERM: orderly; SIGKILL: a crash) and waits for it to go. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const d = this.daemon;
    if (!d || d.exitCode !== null || d.signalCode !== null) return;
    const gone = new Promise((resolve) => d.once('exit', resolve));
    d.kill(signal);
    await gone;
    this.daemon = null;
  }

  /** Waits for the daemon to die by itself (a fault point, test/daemon/crash.test.ts); its signal. */
  async died(timeoutMs = 10_000): Promise<NodeJS.Signals | number | null> {
    const d = this.daemon;
    if (!d) throw new Error('no daemon started');
    if (d.exitCode === null && d.signalCode === null) {
      const timer = setTimeout(() => undefined, timeoutMs);
      const gone = await Promise.race([new Promise<boolean>((resolve) => d.once('exit', () => resolve(true))), sleep(timeoutMs).then(() => false)]);
      clearTimeout(timer);
      if (!gone) throw new Error(`the daemon did not die within ${timeoutMs} ms:\n${this.daemonLog}`);
    }
    this.daemon = null;
    return d.signalCode ?? d.exitCode;
  }

  /** Runs the real CLI against this daemon. */
  cli(args: readonly string[], env: Readonly<Record<string, string>> = {}): CliRun {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...this.env(), GPUSHARE_HOST: this.socket, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
    const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((resolve) => {
      child.once('close', (status, signal) => {
        this.children.delete(child);
        resolve({ status, signal, stdout, stderr });
      });
    });
    return { child, done };
  }

  async run(args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<{ status: number | null; stdout: string; stderr: string }> {
    return this.cli(args, env).done;
  }

  /** `run -d`: the new task's id. */
  async detach(args: readonly string[]): Promise<string> {
    const r = await this.run(['run', '-d', ...args]);
    if (r.status !== 0) throw new Error(`run -d failed (${r.status}): ${r.stderr}`);
    return r.stdout.trim();
  }

  task(id: string): Promise<TaskBody> {
    return this.client.json<TaskBody>('GET', `/v1/tasks/${id}`);
  }

  /** Polls until the task satisfies `done` (default: it has ended). */
  async waitFor(id: string, done: (t: TaskBody) => boolean = (t) => !['queued', 'starting', 'running', 'suspending', 'suspended', 'resuming'].includes(t.state), timeoutMs = 10_000): Promise<TaskBody> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const t = await this.task(id);
      if (done(t)) return t;
      if (Date.now() > deadline) throw new Error(`task ${id} still ${t.state} after ${timeoutMs} ms`);
      await sleep(30);
    }
  }

  /** Kills every task process still alive (by its recorded group), the CLIs and the daemon, then removes the directory. */
  async cleanup(): Promise<void> {
    for (const c of this.children) c.kill('SIGKILL');
    try {
      const tasks = await this.client.json<TaskBody[]>('GET', '/v1/tasks');
      for (const t of tasks) if (t.pid !== null) killGroup(t.pid);
    } catch {
      // daemon already down: tasks were stopped by the test itself
    }
    await this.stop('SIGKILL');
    for (const f of this.uidClaims) rmSync(f, { force: true });
    for (const pid of this.extraPids) killGroup(pid);
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Task process groups a test learned about while the daemon was down. */
  readonly extraPids = new Set<number>();

  private env(): Record<string, string | undefined> {
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('GPUSHARE_')) delete env[k];
    return env;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A process's state letter from /proc (R, S, T, Z...), null when it is gone. */
export function procState(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

/** A stop signal takes effect when the process is next scheduled: on a loaded machine, give it time. */
export async function stateBecomes(pid: number, want: string, timeoutMs = 10_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = procState(pid);
    if (s === want || Date.now() > deadline) return s;
    await sleep(20);
  }
}

function readIfThere(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/**
 * Waits until the task's stdout contains `text`, and returns the whole stdout. On a timeout the
 * error carries both streams: a task that failed says why in its stderr.
 */
export async function waitForOutput(task: Pick<TaskBody, 'id' | 'stdoutPath' | 'stderrPath'>, text: string, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = readIfThere(task.stdoutPath);
    if (out.includes(text)) return out;
    if (Date.now() > deadline) throw new Error(`task ${task.id} never printed "${text}"; stdout so far:\n${out}\nstderr:\n${readIfThere(task.stderrPath)}`);
    await sleep(30);
  }
}
