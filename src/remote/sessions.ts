/**
 * Remote GPU sessions opened by the daemon (POST /v1/remote/sessions, docs/remote.md). A
 * session is a task of the caller's tenant running this install's worker; the daemon makes
 * the session key and hands it to the worker in a 0600 file of its own, named on the worker's
 * command line (`--key-file`), so the key is in no task record, environment or argv. The file
 * is removed as soon as the worker has read it (it says "listening" only after), or when the
 * task ends first. When tasks run as their tenants' own users (sandbox users), the file is
 * given to the user the worker will run as (the directory is then traversable, not listable),
 * so that user alone besides the daemon can read it. A TLS session's worker makes its own
 * certificate and says its pin in the same line as its port (docs/remote.md "TLS").
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Principal } from '../contract/principal.js';
import type { OpenRemoteSession } from '../contract/remote.js';
import { workerListening } from '../contract/remote-worker.js';
import type { SubmitTask } from '../contract/schemas.js';
import { LIVE_STATES, type SubmitInput, type Task } from '../contract/task.js';
import { ErrorCodes, GsError } from '../domain/index.js';

const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** This install's worker binary, unless the daemon's environment names another (tests, packagers). */
export function daemonWorkerPath(env: Readonly<Record<string, string | undefined>>): string {
  return env['GPUSHARE_REMOTE_WORKER'] ?? join(PACKAGE_ROOT, 'build', 'native', 'gpushare-remote-worker');
}

/** What of the daemon a session needs: submit a task, read it back, and whom a tenant's tasks run as. */
export interface SessionDaemon {
  submitSoon(input: SubmitInput, principal: Principal): Promise<Task>;
  get(id: string): Task;
  /** The user a task of `tenant` will run as; null: the daemon's own (no sandbox users). */
  taskUser(tenant: string | null): { readonly uid: number; readonly gid: number } | null;
}

export interface OpenedSession {
  readonly task: Task;
  readonly port: number | null;
  readonly key: string;
  /** null: a plaintext session; else its worker's certificate pin (null while it is queued). */
  readonly tls: { readonly sha256: string | null } | null;
}

/** The worker's task: one GPU, the slice asked for, the key's file (never the key) on its command line; `--tls` when `tls`. */
export function workerTask(body: OpenRemoteSession, workerPath: string, keyFile: string, tls = false): SubmitTask {
  const acceptMs = Math.round((body.connectTimeoutSeconds ?? 60) * 1000);
  return {
    command: [workerPath, '--listen', `0.0.0.0:${body.port ?? 0}`, '--key-file', keyFile, ...(tls ? ['--tls'] : []), '--accept-timeout-ms', String(acceptMs), '--idle-timeout-ms', '60000'],
    gpus: 1,
    ...(body.memory !== undefined ? { memory: body.memory } : {}),
    ...(body.compute !== undefined ? { compute: body.compute } : {}),
    ...(body.priority !== undefined ? { priority: body.priority } : {}),
    ...(body.tenant !== undefined ? { tenant: body.tenant } : {}),
  };
}

export class RemoteSessions {
  private keyDir: string | null = null;
  /** Key files not yet read, by task id: removed by the watch that ends them. */
  private readonly pending = new Map<string, ReturnType<typeof setInterval>>();

  constructor(
    private readonly daemon: SessionDaemon,
    private readonly workerPath: string = daemonWorkerPath(process.env),
    private readonly pollMs = 50,
  ) {}

  /**
   * Submits the session's task (the tenant's quota and priority rules apply as to any task)
   * and waits up to `waitSeconds` for its worker to listen. A session that ends before it
   * listens is an error naming why; one still queued is answered with port null. `tls`: the
   * session's default when the body does not say (the route: whether the request came over TLS).
   */
  async open(body: OpenRemoteSession, principal: Principal, tlsByDefault = false): Promise<OpenedSession> {
    const key = randomBytes(32).toString('hex');
    const tls = body.tls ?? tlsByDefault;
    const keyFile = this.writeKey(key, this.daemon.taskUser(body.tenant ?? principal.tenant));
    let task: Task;
    try {
      task = await this.daemon.submitSoon(workerTask(body, this.workerPath, keyFile, tls), principal);
    } catch (err) {
      rmSync(keyFile, { force: true });
      throw err;
    }
    const deadline = Date.now() + (body.waitSeconds ?? 10) * 1000;
    for (;;) {
      const now = this.daemon.get(task.id);
      const listening = workerListening(readSoFar(now.stdoutPath));
      if (listening !== null) {
        rmSync(keyFile, { force: true });
        return { task: now, port: listening.port, key, tls: tls ? { sha256: listening.tlsSha256 } : null };
      }
      if (!LIVE_STATES.has(now.state)) {
        rmSync(keyFile, { force: true });
        const said = readSoFar(now.stderrPath).trim().split('\n').slice(-3).join(' / ');
        throw new GsError(ErrorCodes.invalidArgument, `remote session ${now.id} ${now.state} before its worker listened${now.message ? `: ${now.message}` : ''}${said ? ` (it said: ${said})` : ''}`);
      }
      if (Date.now() >= deadline) {
        this.watch(now.id, keyFile);
        return { task: now, port: null, key, tls: tls ? { sha256: null } : null };
      }
      await new Promise((r) => setTimeout(r, this.pollMs));
    }
  }

  /**
   * The key's file, 0600 in the daemon's own directory. For a worker that runs as another user
   * (sandbox users) the file is that user's and the directory 0711: the user reaches the file
   * by its name (on the worker's command line) but cannot list or change the directory, and
   * nobody else can read the file. Without sandbox users the directory stays 0700.
   */
  private writeKey(key: string, user: { readonly uid: number; readonly gid: number } | null): string {
    this.keyDir ??= mkdtempSync(join(tmpdir(), 'gpushare-remote-keys-'));
    const keyFile = join(this.keyDir, `${randomBytes(12).toString('hex')}.key`);
    writeFileSync(keyFile, `${key}\n`, { mode: 0o600, flag: 'wx' });
    if (user !== null) {
      try {
        chownSync(keyFile, user.uid, user.gid);
        chmodSync(this.keyDir, 0o711);
      } catch (err) {
        rmSync(keyFile, { force: true });
        throw err;
      }
    }
    return keyFile;
  }

  /** Keeps a queued session's key file until its worker has read it or its task ended. */
  private watch(id: string, keyFile: string): void {
    const timer = setInterval(() => {
      let done = true;
      try {
        const t = this.daemon.get(id);
        done = !LIVE_STATES.has(t.state) || workerListening(readSoFar(t.stdoutPath)) !== null;
      } catch {
        // gone (removed): nothing will read it
      }
      if (!done) return;
      rmSync(keyFile, { force: true });
      clearInterval(timer);
      this.pending.delete(id);
    }, 250);
    timer.unref();
    this.pending.set(id, timer);
  }

  /** Removes every key file not yet read (the daemon stops). */
  close(): void {
    for (const timer of this.pending.values()) clearInterval(timer);
    this.pending.clear();
    if (this.keyDir !== null) rmSync(this.keyDir, { recursive: true, force: true });
  }
}

/** A task's output so far ('' before it starts). The worker's line is its first, so 4 KiB is plenty. */
function readSoFar(path: string): string {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return '';
  }
  try {
    const buf = Buffer.alloc(4096);
    return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0)).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
