import type { SliceRequest } from '../../domain/index.js';
import { ErrorCodes, GsError } from '../../domain/index.js';
import { LIVE_STATES, type Task, type TaskGpu, type TaskSmRange, type TaskState } from '../../contract/task.js';
import type { Statement } from 'better-sqlite3';
import { shown } from '../../contract/shown.js';
import type { Db } from './db.js';
import { IdempotencyStore } from './idempotency.js';
import { GpuHealthStore } from './gpu-health.js';
import { TenantStore } from './tenants.js';

interface TaskRow {
  seq: number;
  id: string;
  state: string;
  command: string;
  env: string;
  cwd: string;
  request: string;
  priority: number;
  tenant: string | null;
  gpus: string | null;
  compute_limit_percent: number | null;
  sm_ranges: string | null;
  pid: number | null;
  pid_start_time: number | null;
  submitted_at: number;
  started_at: number | null;
  finished_at: number | null;
  exit_code: number | null;
  signal: string | null;
  message: string | null;
  peak_memory_bytes: number | null;
  kill_requested: number;
  adopted: number;
  suspended_at: number | null;
  suspensions: number;
  preempted_by: string | null;
  auto_resume: number;
  kill_signal: string | null;
  kill_deadline: number | null;
  resume_gpus: string | null;
  stdout_path: string;
  stderr_path: string;
  region_path: string;
}

export type NewTask = Omit<Task, 'seq' | 'state' | 'gpus' | 'computeLimitPercent' | 'smRanges' | 'pid' | 'pidStartTime' | 'startedAt' | 'finishedAt' | 'exitCode' | 'signal' | 'message' | 'peakMemoryBytes' | 'killRequested' | 'adopted' | 'suspendedAt' | 'suspensions' | 'preemptedBy' | 'autoResume' | 'waiting'>;

/**
 * The daemon's own timed actions on a task, stored so that a restarted daemon carries them on
 * (lifecycle.ts); not part of the API's task record.
 */
export interface TimedActions {
  /** The signal a kill sent (`SIGTERM`), while the kill is under way. */
  readonly killSignal: string | null;
  /** When the kill escalates to SIGKILL, UTC epoch ms. */
  readonly killDeadline: number | null;
  /** Where a resuming task is being restored to. */
  readonly resumeGpus: readonly TaskGpu[] | null;
}

/** Fields a state change may set. */
export type TaskUpdate = Partial<Pick<Task, 'state' | 'gpus' | 'computeLimitPercent' | 'smRanges' | 'pid' | 'pidStartTime' | 'startedAt' | 'finishedAt' | 'exitCode' | 'signal' | 'message' | 'peakMemoryBytes' | 'killRequested' | 'adopted' | 'suspendedAt' | 'suspensions' | 'preemptedBy' | 'autoResume'> & TimedActions>;

const COLUMN: Record<keyof TaskUpdate, string> = {
  state: 'state',
  gpus: 'gpus',
  computeLimitPercent: 'compute_limit_percent',
  smRanges: 'sm_ranges',
  pid: 'pid',
  pidStartTime: 'pid_start_time',
  startedAt: 'started_at',
  finishedAt: 'finished_at',
  exitCode: 'exit_code',
  signal: 'signal',
  message: 'message',
  peakMemoryBytes: 'peak_memory_bytes',
  killRequested: 'kill_requested',
  adopted: 'adopted',
  suspendedAt: 'suspended_at',
  suspensions: 'suspensions',
  preemptedBy: 'preempted_by',
  autoResume: 'auto_resume',
  killSignal: 'kill_signal',
  killDeadline: 'kill_deadline',
  resumeGpus: 'resume_gpus',
};

export interface EventRecord {
  readonly seq: number;
  readonly at: number;
  readonly type: string;
  readonly taskId: string | null;
  readonly data: Readonly<Record<string, unknown>>;
}

export interface AuditEntry {
  readonly actor: string;
  readonly role: string;
  readonly action: string;
  readonly target: string | null;
  readonly detail: Readonly<Record<string, unknown>>;
  /** 'ok', or the error code the change was refused with. */
  readonly result?: string;
  readonly message?: string | null;
}

/** An audit row as the API lists it. */
export interface AuditRecord extends Required<AuditEntry> {
  readonly seq: number;
  readonly at: number;
}

/** The daemon's persistent state: tasks, their events and the audit trail. Synchronous (better-sqlite3). */
export class TaskStore {
  private readonly insertTask;
  private readonly byId;
  private readonly byPrefix;
  private readonly byTenantPrefix;
  private readonly live;
  private readonly all;
  private readonly insertEvent;
  private readonly eventsSince;
  private readonly tenantEventsSince;
  private readonly insertAudit;
  private readonly auditSince;
  readonly tenants: TenantStore;
  /** Submissions' Idempotency-Keys (the API's retries). */
  readonly idempotency: IdempotencyStore;
  /** GPUs' cordons and faults (node/gpu-health.ts). */
  readonly gpuHealth: GpuHealthStore;
  /**
   * Live tasks (LIVE_STATES) by id, in arrival order (seq: a Map keeps insertion order, and
   * rows are inserted in seq order), kept up to date by every write through this store: a write
   * re-reads its one row and puts it in (or takes it out). Listing live tasks is the API's most
   * frequent read (ps, top) and every queue pass's first step; rereading and parsing every live
   * row after each write made each submission cost O(live tasks) (bench/start-throughput.bench.ts:
   * a quarter of the daemon's time at 1,000 queued tasks). A task's object is replaced only
   * when its row changes, so callers may cache what they derive from it by identity. Dropped
   * (read again in full on the next list) when a transaction rolls back.
   */
  private liveCache: Map<string, Task> | null = null;
  /** Open transactions (nested ones are savepoints), and what waits for the outermost to commit. */
  private depth = 0;
  private afterCommitHooks: (() => void)[] = [];
  private draining = false;
  private liveVersionCounter = 0;
  /** UPDATE statements by the columns they set (prepared once each; a state change sets one of a few sets). */
  private readonly updates = new Map<string, Statement>();
  /** page()'s statements by their SQL (a handful: tenant and state filters on or off, by state count). */
  private readonly pageStatements = new Map<string, ReturnType<Db['prepare']>>();

  constructor(private readonly db: Db) {
    this.tenants = new TenantStore(db);
    this.idempotency = new IdempotencyStore(db);
    this.gpuHealth = new GpuHealthStore(db);
    this.insertTask = db.prepare(`INSERT INTO tasks (id, state, command, env, cwd, request, priority, tenant, submitted_at, stdout_path, stderr_path, region_path)
      VALUES (@id, 'queued', @command, @env, @cwd, @request, @priority, @tenant, @submittedAt, @stdoutPath, @stderrPath, @regionPath)`);
    this.byId = db.prepare('SELECT * FROM tasks WHERE id = ?');
    this.byPrefix = db.prepare("SELECT * FROM tasks WHERE id LIKE ? || '%' ESCAPE '\\' LIMIT 2");
    this.byTenantPrefix = db.prepare("SELECT * FROM tasks WHERE id LIKE ? || '%' ESCAPE '\\' AND tenant = ? LIMIT 2");
    this.live = db.prepare(`SELECT * FROM tasks WHERE state IN (${[...LIVE_STATES].map((st) => `'${st}'`).join(', ')}) ORDER BY seq`);
    this.all = db.prepare('SELECT * FROM tasks ORDER BY seq');
    this.insertEvent = db.prepare('INSERT INTO events (at, type, task_id, data) VALUES (?, ?, ?, ?)');
    this.eventsSince = db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?');
    this.tenantEventsSince = db.prepare('SELECT e.* FROM events e JOIN tasks t ON t.id = e.task_id WHERE e.seq > ? AND t.tenant = ? ORDER BY e.seq LIMIT ?');
    this.insertAudit = db.prepare('INSERT INTO audit (at, actor, role, action, target, detail, result, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
    this.auditSince = db.prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?');
  }

  /**
   * Runs `fn` in one transaction: a change and its event/audit rows land together or not at all.
   * Nested calls are savepoints of the outermost, which alone commits: many changes made in one
   * turn of the event loop (every start of a queue pass) then cost one commit, a write of each
   * changed page once (a commit of its own costs 5-7 times one change inside a batch here).
   */
  transaction<T>(fn: () => T): T {
    const hooks = this.afterCommitHooks.length;
    this.depth += 1;
    let result: T;
    try {
      result = this.db.transaction(fn)();
    } catch (err) {
      this.depth -= 1;
      this.afterCommitHooks.length = hooks; // what the rolled-back part meant to do after it, never happens
      this.dropLive(); // it may hold rows read inside the transaction that was rolled back
      throw err;
    }
    this.depth -= 1;
    if (this.depth === 0) this.runAfterCommit();
    return result;
  }

  /**
   * Runs `fn` once what was written so far is committed: at once outside a transaction, else
   * when the outermost one commits (never, if it rolls back). For what must not happen before
   * a change is durable: a process started after its `starting` state, listeners told of an
   * event.
   */
  afterCommit(fn: () => void): void {
    this.afterCommitHooks.push(fn);
    if (this.depth === 0) this.runAfterCommit();
  }

  /**
   * Told of an after-commit hook that threw (the daemon logs it). The others still run, in
   * order, and the transaction, which did commit, does not throw.
   */
  onAfterCommitError: (err: unknown) => void = (err) => process.emitWarning(`gpushare: after-commit work failed: ${err instanceof Error ? err.message : String(err)}`);

  /** Runs the waiting hooks in the order they were added, those a hook adds (its own commits) included. */
  private runAfterCommit(): void {
    if (this.draining) return; // the loop below, further up the stack, runs what was just added
    this.draining = true;
    try {
      for (let hook = this.afterCommitHooks.shift(); hook !== undefined; hook = this.afterCommitHooks.shift()) {
        try {
          hook();
        } catch (err) {
          this.onAfterCommitError(err);
        }
      }
    } finally {
      this.draining = false;
    }
  }

  /**
   * The new row as a reread would parse it (the columns not inserted at their defaults, the
   * JSON ones through their stored text), built without the SELECT: a submission's largest cost
   * after its commit was reading back what it had just written.
   */
  create(task: NewTask): Task {
    const row = {
      id: task.id,
      command: JSON.stringify(task.command),
      env: JSON.stringify(task.env),
      cwd: task.cwd,
      request: JSON.stringify(task.request),
      priority: task.priority,
      tenant: task.tenant,
      submittedAt: task.submittedAt,
      stdoutPath: task.stdoutPath,
      stderrPath: task.stderrPath,
      regionPath: task.regionPath,
    };
    const info = this.insertTask.run(row);
    return this.wrote(
      fromRow({
        ...NEW_ROW_DEFAULTS,
        seq: Number(info.lastInsertRowid),
        id: row.id,
        command: row.command,
        env: row.env,
        cwd: row.cwd,
        request: row.request,
        priority: row.priority,
        tenant: row.tenant,
        submitted_at: row.submittedAt,
        stdout_path: row.stdoutPath,
        stderr_path: row.stderrPath,
        region_path: row.regionPath,
      }),
    );
  }

  /**
   * The task with this id, or the only one whose id starts with it (like docker's short ids).
   * With `tenant`, only that tenant's tasks are looked at: another tenant's task is not there,
   * and its id never makes a prefix ambiguous (that would disclose it).
   */
  resolve(idOrPrefix: string, tenant?: string): Task {
    const exact = this.byId.get(idOrPrefix) as TaskRow | undefined;
    if (exact && (tenant === undefined || exact.tenant === tenant)) return fromRow(exact);
    if (!/^[0-9a-f]{1,32}$/.test(idOrPrefix)) throw new GsError(ErrorCodes.notFound, `no task "${shown(idOrPrefix)}"; task ids are lowercase hex`);
    const rows = (tenant === undefined ? this.byPrefix.all(idOrPrefix) : this.byTenantPrefix.all(idOrPrefix, tenant)) as TaskRow[];
    if (rows.length === 0) throw new GsError(ErrorCodes.notFound, `no task "${idOrPrefix}"`);
    if (rows.length > 1) throw new GsError(ErrorCodes.invalidArgument, `"${idOrPrefix}" matches more than one task; give more of its id`);
    return fromRow(rows[0] as TaskRow);
  }

  /** The task's stored timed actions (see TimedActions). */
  timedActions(id: string): TimedActions {
    const row = this.byId.get(id) as TaskRow | undefined;
    if (!row) throw new GsError(ErrorCodes.notFound, `no task "${id}"`);
    return { killSignal: row.kill_signal, killDeadline: row.kill_deadline, resumeGpus: row.resume_gpus === null ? null : (JSON.parse(row.resume_gpus) as TaskGpu[]) };
  }

  get(id: string): Task {
    // A live task's cached record is what a reread would give (every write goes through here).
    const cached = this.liveCache?.get(id);
    if (cached !== undefined) return cached;
    const row = this.byId.get(id) as TaskRow | undefined;
    if (!row) throw new GsError(ErrorCodes.notFound, `no task "${id}"`);
    return fromRow(row);
  }

  /** Changes whenever a queued or running task may have changed: a key for caches of the live list. */
  liveVersion(): number {
    return this.liveVersionCounter;
  }

  private dropLive(): void {
    this.liveCache = null;
    this.liveVersionCounter += 1;
  }

  /** A task row as just written: into the live cache (or out of it, once it ended). */
  private wrote(task: Task): Task {
    this.liveVersionCounter += 1;
    if (this.liveCache !== null) {
      if (LIVE_STATES.has(task.state)) this.liveCache.set(task.id, task);
      else this.liveCache.delete(task.id);
    }
    return task;
  }

  /** Queued and running tasks in arrival order, or every task with `all`. */
  list(all = false): Task[] {
    if (all) return (this.all.all() as TaskRow[]).map(fromRow);
    this.liveCache ??= new Map((this.live.all() as TaskRow[]).map((r) => [r.id, fromRow(r)]));
    return [...this.liveCache.values()];
  }

  /**
   * Up to `limit` tasks after seq `after`, in seq order, optionally of one tenant and some
   * states: a page of a list (the API's cursor is the last seq of the page before).
   */
  page(query: { after: number; limit: number; tenant?: string | undefined; states?: readonly string[] | undefined }): Task[] {
    const where = ['seq > @after'];
    if (query.tenant !== undefined) where.push('tenant = @tenant');
    if (query.states !== undefined) where.push(`state IN (${query.states.map((_, i) => `@s${i}`).join(', ')})`);
    const params: Record<string, unknown> = { after: query.after, limit: query.limit, tenant: query.tenant };
    if (query.tenant === undefined) delete params['tenant'];
    query.states?.forEach((s, i) => (params[`s${i}`] = s));
    const sql = `SELECT * FROM tasks WHERE ${where.join(' AND ')} ORDER BY seq LIMIT @limit`;
    let statement = this.pageStatements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.pageStatements.set(sql, statement);
    }
    return (statement.all(params) as TaskRow[]).map(fromRow);
  }

  /**
   * Finished tasks (not live) that ended before `before` (epoch ms; one that never got an end
   * time counts from its submission), oldest first, optionally one tenant's: what a prune takes.
   */
  finishedBefore(before: number, tenant?: string): Task[] {
    const live = [...LIVE_STATES].map((st) => `'${st}'`).join(', ');
    const sql = `SELECT * FROM tasks WHERE state NOT IN (${live}) AND coalesce(finished_at, submitted_at) < @before${tenant === undefined ? '' : ' AND tenant = @tenant'} ORDER BY seq`;
    return (this.db.prepare(sql).all(tenant === undefined ? { before } : { before, tenant }) as TaskRow[]).map(fromRow);
  }

  /**
   * Deletes a finished task's row and the Idempotency-Keys that name it (a retry with one then
   * makes a new task rather than answering with one that is gone). Its events and audit rows
   * stay: they are the history of what happened. A live task is refused: its row is its state.
   */
  remove(id: string): void {
    const task = this.get(id);
    if (LIVE_STATES.has(task.state)) throw new GsError(ErrorCodes.conflict, `task ${id} is ${task.state}; only a finished task can be removed`);
    this.db.prepare('DELETE FROM idempotency_keys WHERE task_id = ?').run(id);
    this.db.prepare('DELETE FROM tasks WHERE id = ?').run(id);
    this.liveVersionCounter += 1;
  }

  update(id: string, change: TaskUpdate): Task {
    const keys = Object.keys(change) as (keyof TaskUpdate)[];
    if (keys.length > 0) {
      const sets = keys.map((k) => `${COLUMN[k]} = @${k}`).join(', ');
      let statement = this.updates.get(sets);
      if (statement === undefined) {
        statement = this.db.prepare(`UPDATE tasks SET ${sets} WHERE id = @id`);
        this.updates.set(sets, statement);
      }
      const values: Record<string, unknown> = { id };
      for (const k of keys) values[k] = toColumn(k, change[k]);
      statement.run(values);
    }
    // A live task's row is its cached record with the change applied, as a reread would parse it
    // (JSON columns through their stored text): no SELECT and no parse of its command and env.
    const cached = this.liveCache?.get(id);
    if (cached === undefined) return this.wrote(this.get(id));
    const next: Record<string, unknown> = { ...cached };
    for (const k of keys) {
      if (!(k in cached)) continue; // a timed action (TimedActions): not on the record
      const stored = toColumn(k, change[k]);
      next[k] = JSON_COLUMNS.has(k) && typeof stored === 'string' ? JSON.parse(stored) : k === 'killRequested' || k === 'adopted' || k === 'autoResume' ? stored !== 0 : stored;
    }
    return this.wrote(next as unknown as Task);
  }

  recordEvent(at: number, type: string, taskId: string | null, data: Record<string, unknown> = {}): EventRecord {
    const info = this.insertEvent.run(at, type, taskId, JSON.stringify(data));
    return { seq: Number(info.lastInsertRowid), at, type, taskId, data };
  }

  /** Events after `since`; with `tenant`, only those of its tasks. */
  events(since: number, limit: number, tenant?: string): EventRecord[] {
    const rows = tenant === undefined ? this.eventsSince.all(since, limit) : this.tenantEventsSince.all(since, tenant, limit);
    return (rows as { seq: number; at: number; type: string; task_id: string | null; data: string }[]).map((r) => ({
      seq: r.seq,
      at: r.at,
      type: r.type,
      taskId: r.task_id,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  audit(at: number, entry: AuditEntry): void {
    this.insertAudit.run(at, entry.actor, entry.role, entry.action, entry.target, JSON.stringify(entry.detail), entry.result ?? 'ok', entry.message ?? null);
  }

  auditLog(since: number, limit: number): AuditRecord[] {
    type Row = { seq: number; at: number; actor: string; role: string; action: string; target: string | null; detail: string; result: string; message: string | null };
    return (this.auditSince.all(since, limit) as Row[]).map((r) => ({
      seq: r.seq,
      at: r.at,
      actor: r.actor,
      role: r.role,
      action: r.action,
      target: r.target,
      detail: JSON.parse(r.detail) as Record<string, unknown>,
      result: r.result,
      message: r.message,
    }));
  }

  auditCount(): number {
    return this.db.prepare('SELECT count(*) FROM audit').pluck().get() as number;
  }
}

/** A new row's columns that insertTask leaves to the schema (migrations.ts): NULL or their DEFAULT; create() test compares with a reread. */
const NEW_ROW_DEFAULTS: Omit<TaskRow, 'seq' | 'id' | 'command' | 'env' | 'cwd' | 'request' | 'priority' | 'tenant' | 'submitted_at' | 'stdout_path' | 'stderr_path' | 'region_path'> = {
  state: 'queued',
  gpus: null,
  compute_limit_percent: null,
  sm_ranges: null,
  pid: null,
  pid_start_time: null,
  started_at: null,
  finished_at: null,
  exit_code: null,
  signal: null,
  message: null,
  peak_memory_bytes: null,
  kill_requested: 0,
  adopted: 0,
  suspended_at: null,
  suspensions: 0,
  preempted_by: null,
  auto_resume: 0,
  kill_signal: null,
  kill_deadline: null,
  resume_gpus: null,
};

const JSON_COLUMNS: ReadonlySet<keyof TaskUpdate> = new Set(['gpus', 'smRanges', 'resumeGpus']);

function toColumn(key: keyof TaskUpdate, value: unknown): unknown {
  if (JSON_COLUMNS.has(key)) return value === null ? null : JSON.stringify(value);
  if (key === 'killRequested' || key === 'adopted' || key === 'autoResume') return value ? 1 : 0;
  return value;
}

function fromRow(r: TaskRow): Task {
  return {
    id: r.id,
    seq: r.seq,
    state: r.state as TaskState,
    command: JSON.parse(r.command) as string[],
    env: JSON.parse(r.env) as Record<string, string>,
    cwd: r.cwd,
    request: JSON.parse(r.request) as SliceRequest,
    priority: r.priority,
    tenant: r.tenant,
    gpus: r.gpus === null ? null : (JSON.parse(r.gpus) as TaskGpu[]),
    computeLimitPercent: r.compute_limit_percent,
    smRanges: r.sm_ranges === null ? null : (JSON.parse(r.sm_ranges) as TaskSmRange[]),
    pid: r.pid,
    pidStartTime: r.pid_start_time,
    submittedAt: r.submitted_at,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    exitCode: r.exit_code,
    signal: r.signal,
    message: r.message,
    peakMemoryBytes: r.peak_memory_bytes,
    killRequested: r.kill_requested !== 0,
    adopted: r.adopted !== 0,
    suspendedAt: r.suspended_at,
    suspensions: r.suspensions,
    preemptedBy: r.preempted_by,
    // Not stored: the daemon's queue pass sets it on the records it returns (see Daemon.withWaiting).
    waiting: null,
    autoResume: r.auto_resume !== 0,
    stdoutPath: r.stdout_path,
    stderrPath: r.stderr_path,
    regionPath: r.region_path,
  };
}
