/**
 * The node daemon's core: admits tasks, keeps the queue, places tasks with the scheduler engine,
 * launches and supervises them, and re-adopts them after a restart. Every state change is one
 * SQLite transaction (the task row, its event, and for API changes an audit row), committed
 * before anything is signalled or started, so a crash between the two leaves a state the next
 * start can reconcile.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { getSystemErrorMap } from 'node:util';
import type { Logger } from 'pino';
import { checkRequestAgainstGpus, describeIssues, ErrorCodes, formatBytes, GsError, parseSliceRequest, type Gpu, type SliceRequestInput } from '../domain/index.js';
import type { GpuBackend } from '../gpu/backend.js';
import { buildSnapshot, createPrng, describeDecision, parsePolicy, schedule, withPlacement, type NodeSpec, type Policy, type Prng } from '../scheduler/index.js';
import { launch, readExitStatus, taskEnvironment, taskFiles, type NativePaths } from './launcher.js';
import { computeLimitPercent, currentSnapshot, localNode, placementRequest, taskGpus } from './placement.js';
import { isSameLiveProcess, signalGroup, signalName, signalNumber } from './proc.js';
import type { AuditEntry, AuditRecord, EventRecord, TaskStore } from './store/tasks.js';
import type { Quota } from './store/tenants.js';
import { checkTenantName, parseQuota, quotaMap, requireAdmin, tenantViews, type QuotaInput, type TenantView } from './tenants.js';
import { Supervisor, type Ending } from './supervisor.js';
import { LIVE_STATES, queueOrder, type Task, type TaskGpu, type TaskState } from './task.js';

/** Who asks: the Unix socket's user (admin), or a bearer token's tenant on TCP. */
export interface Principal {
  readonly actor: string;
  readonly role: 'admin' | 'user';
  readonly tenant: string | null;
}

export interface SubmitInput extends SliceRequestInput {
  readonly command: readonly string[];
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly cwd?: string | undefined;
  readonly tenant?: string | undefined;
}

export interface DaemonOptions {
  readonly stateDir: string;
  readonly backend: GpuBackend;
  readonly store: TaskStore;
  readonly logger: Logger;
  readonly native: NativePaths;
  readonly policy: string;
  readonly killGraceMs: number;
  /** The environment tasks start from (the daemon's own by default). */
  readonly baseEnv?: Readonly<Record<string, string | undefined>>;
  readonly now?: () => number;
}

export type EventListener = (event: EventRecord) => void;

/** A GPU with what the daemon has placed on it. */
export interface GpuWithSlices extends Gpu {
  readonly slices: GpuSlice[];
  readonly allocatedMemoryBytes: number;
  readonly allocatedComputeMilli: number;
}

/** One running task's slice of a GPU: what it reserved, and what libgpushare says it uses. */
export interface GpuSlice {
  /** null (with tenant) for another tenant's task, when a user token asks. */
  readonly taskId: string | null;
  readonly tenant: string | null;
  readonly priority: number;
  readonly memoryBytes: number;
  readonly computeMilli: number;
  /** From the task's region, sampled about once a second; null before its first CUDA call. */
  readonly usedMemoryBytes: number | null;
  /** Achieved share of the GPU's compute, 0..1; null as above. */
  readonly computeShare: number | null;
}

const MAX_COMMAND_ARGS = 4096;

export class Daemon {
  private readonly store: TaskStore;
  private readonly log: Logger;
  private readonly policy: Policy;
  private readonly rng: Prng;
  private readonly now: () => number;
  private readonly supervisor: Supervisor;
  private readonly listeners = new Set<EventListener>();
  private readonly killTimers = new Map<string, NodeJS.Timeout>();
  private node: NodeSpec;
  private closed = false;
  /**
   * The queued task the last pump stopped at for want of room, if any. Until something ends or
   * changes, a submission queued behind it cannot start, so submit skips the pump (which reads
   * the whole queue): a deep queue does not make every submission slower.
   */
  private blockedAt: Pick<Task, 'priority' | 'seq'> | null = null;

  constructor(private readonly options: DaemonOptions) {
    this.store = options.store;
    this.log = options.logger;
    this.now = options.now ?? Date.now;
    const policy = parsePolicy(options.policy);
    if (!policy.ok) throw new GsError(ErrorCodes.invalidArgument, `policy: ${describeIssues(policy.issues)}`);
    this.policy = policy.value;
    this.rng = createPrng(0x5eed);
    this.node = localNode(options.backend.gpus());
    this.supervisor = new Supervisor({ onEnd: (id, ending) => this.ended(id, ending) });
  }

  /** Reconciles with what survived the last daemon, then starts whatever fits. */
  start(): void {
    for (const task of this.store.list().filter((t) => t.state === 'running')) {
      const files = taskFiles(this.options.stateDir, task.id);
      if (task.pid !== null && task.pidStartTime !== null && isSameLiveProcess(task.pid, task.pidStartTime)) {
        this.supervisor.watchAdopted(task.id, task.pid, task.pidStartTime, files.status, task.regionPath);
        this.commit(task.id, { adopted: true }, 'task.adopted', { pid: task.pid });
        this.log.info({ task: task.id, taskPid: task.pid }, 're-adopted running task');
      } else {
        this.ended(task.id, { status: readExitStatus(files.status), wrapper: null, peakMemoryBytes: task.peakMemoryBytes }, true);
      }
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    this.supervisor.close();
    for (const t of this.killTimers.values()) clearTimeout(t);
    this.killTimers.clear();
    this.listeners.clear();
  }

  onEvent(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Events after `since`: all of them for an admin, a tenant's own tasks' otherwise. */
  events(since: number, limit: number, principal?: Principal): EventRecord[] {
    return this.store.events(since, limit, principal === undefined || principal.role === 'admin' ? undefined : (principal.tenant ?? ''));
  }

  /** Whether `principal` may see `event` (for live streams). */
  canSeeEvent(principal: Principal, event: EventRecord): boolean {
    if (principal.role === 'admin') return true;
    if (event.taskId === null) return false;
    try {
      return this.store.get(event.taskId).tenant === principal.tenant;
    } catch {
      return false;
    }
  }

  auditLog(principal: Principal, since: number, limit: number): AuditRecord[] {
    requireAdmin(principal, 'reading the audit log');
    return this.store.auditLog(since, limit);
  }

  /** Records a change the API refused, so the audit log shows attempts as well as changes. */
  recordRefusal(principal: Principal, entry: Omit<AuditEntry, 'actor' | 'role'>): void {
    this.store.audit(this.now(), { ...entry, actor: principal.actor, role: principal.role });
  }

  tenants(principal: Principal): TenantView[] {
    const views = tenantViews(this.store, this.usage());
    return principal.role === 'admin' ? views : views.filter((v) => v.name === principal.tenant);
  }

  tenant(name: string, principal: Principal): TenantView {
    const view = this.tenants(principal).find((v) => v.name === name);
    if (!view) throw new GsError(ErrorCodes.notFound, `no tenant "${name}"`);
    return view;
  }

  createTenant(name: string, quota: QuotaInput, principal: Principal): TenantView {
    requireAdmin(principal, 'creating a tenant');
    checkTenantName(name);
    const parsed = parseQuota(quota);
    const at = this.now();
    this.store.transaction(() => {
      this.store.tenants.create(name, parsed, at);
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'tenant.create', target: name, detail: { quota: parsed } });
    });
    return this.tenant(name, principal);
  }

  /** Changes a tenant's quota; lowering it below what runs now stops nothing, it holds back what is queued. */
  setQuota(name: string, quota: QuotaInput, principal: Principal): TenantView {
    requireAdmin(principal, "changing a tenant's quota");
    const at = this.now();
    this.store.transaction(() => {
      const before = this.store.tenants.get(name).quota;
      const after = parseQuota(quota, before);
      this.store.tenants.setQuota(name, after, at);
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'tenant.set-quota', target: name, detail: { before, after } });
    });
    this.pump(); // a raised quota may let queued tasks start
    return this.tenant(name, principal);
  }

  deleteTenant(name: string, principal: Principal): void {
    requireAdmin(principal, 'deleting a tenant');
    const at = this.now();
    this.store.transaction(() => {
      const before = this.store.tenants.get(name);
      const live = this.store.list().filter((t) => t.tenant === name).length;
      // Its queued tasks would otherwise start with no quota at all, which nobody asked for.
      if (live > 0) throw new GsError(ErrorCodes.conflict, `tenant "${name}" has ${live} queued or running task(s); kill them first, or change its quota instead`);
      this.store.tenants.delete(name);
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'tenant.delete', target: name, detail: { quota: before.quota } });
    });
  }

  /**
   * Makes a tenant's quota what the config file says (created if missing), audited as the
   * config's doing; an unchanged one is left alone, so a restart adds no audit noise.
   */
  declareTenant(name: string, quota: Quota, actor: string): void {
    const at = this.now();
    const principal = { actor, role: 'admin' as const };
    this.store.transaction(() => {
      const existing = this.store.tenants.find(name);
      if (!existing) {
        this.store.tenants.create(name, quota, at);
        this.store.audit(at, { ...principal, action: 'tenant.create', target: name, detail: { quota } });
      } else if (JSON.stringify(existing.quota) !== JSON.stringify(quota)) {
        this.store.tenants.setQuota(name, quota, at);
        this.store.audit(at, { ...principal, action: 'tenant.set-quota', target: name, detail: { before: existing.quota, after: quota } });
      }
    });
  }

  /** What each tenant's running tasks hold, as the scheduler counts it. */
  private usage() {
    return currentSnapshot(this.node, this.store.list().filter((t) => t.state === 'running')).usage;
  }

  /** GPUs with their slices; a user sees that others' slices exist and their size, not whose they are. */
  gpus(principal?: Principal): GpuWithSlices[] {
    const gpus = this.options.backend.gpus();
    const running = this.store.list().filter((t) => t.state === 'running');
    return gpus.map((g) => {
      const slices = running.flatMap((t) => {
        const usage = this.supervisor.usage(t.id);
        return (t.gpus ?? []).flatMap((x, ordinal): GpuSlice[] => {
          if (x.uuid !== g.uuid) return [];
          const used = usage === null ? null : (usage.find((u) => u.device === ordinal) ?? { memoryBytes: 0, computeShare: 0 });
          const mine = principal === undefined || canSee(principal, t);
          return [{ taskId: mine ? t.id : null, tenant: mine ? t.tenant : null, priority: t.priority, memoryBytes: x.memoryBytes, computeMilli: x.computeMilli, usedMemoryBytes: used?.memoryBytes ?? null, computeShare: used?.computeShare ?? null }];
        });
      });
      return {
        ...g,
        slices,
        allocatedMemoryBytes: slices.reduce((s, x) => s + x.memoryBytes, 0),
        allocatedComputeMilli: slices.reduce((s, x) => s + x.computeMilli, 0),
      };
    });
  }

  /** See TaskStore.liveVersion. */
  liveVersion(): number {
    return this.store.liveVersion();
  }

  list(all: boolean, principal: Principal): Task[] {
    return this.store.list(all).filter((t) => canSee(principal, t));
  }

  get(idOrPrefix: string, principal: Principal): Task {
    const task = this.store.resolve(idOrPrefix);
    if (!canSee(principal, task)) throw new GsError(ErrorCodes.notFound, `no task "${idOrPrefix}"`);
    return task;
  }

  /** Validates everything first: a refused submission leaves no trace but its error. */
  submit(input: SubmitInput, principal: Principal): Task {
    const tenant = this.tenantFor(input.tenant, principal);
    if (tenant !== null) checkTenantName(tenant);
    const request = this.admit(input, tenant);
    const cwd = checkCwd(input.cwd ?? process.cwd());
    const id = randomBytes(6).toString('hex');
    const files = taskFiles(this.options.stateDir, id);
    const at = this.now();
    const task = this.store.transaction(() => {
      const t = this.store.create({
        id,
        command: [...input.command],
        env: { ...(input.env ?? {}) },
        cwd,
        request,
        priority: request.priority,
        tenant,
        submittedAt: at,
        stdoutPath: files.stdout,
        stderrPath: files.stderr,
        regionPath: files.region,
      });
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'task.submit', target: id, detail: { command: t.command, request: input } });
      this.emit(this.store.recordEvent(at, 'task.submitted', id, { priority: t.priority, tenant }));
      return t;
    });
    this.log.info({ task: id, command: task.command, priority: task.priority }, 'task submitted');
    if (this.blockedAt !== null && queueOrder(task, this.blockedAt) > 0) return task; // queued behind the blocked head: as created
    this.pump();
    return this.store.get(id);
  }

  /**
   * Stops a task: a queued one is cancelled; a running one gets `signal` (SIGTERM by default) on
   * its whole process group, then SIGKILL after the grace period if it is still there.
   */
  kill(idOrPrefix: string, principal: Principal, options: { signal?: string | undefined; graceMs?: number | undefined } = {}): Task {
    const task = this.get(idOrPrefix, principal);
    const signal = signalNumber(options.signal ?? 'SIGTERM');
    if (signal === null) throw new GsError(ErrorCodes.invalidArgument, `"${options.signal}" is not a signal; expected a name such as SIGTERM, SIGINT, SIGKILL or its number`);
    if (!LIVE_STATES.has(task.state)) throw new GsError(ErrorCodes.conflict, `task ${task.id} already ended (${task.state})`);
    const at = this.now();
    const audit = { actor: principal.actor, role: principal.role, action: 'task.kill', target: task.id, detail: { signal: signalName(signal) } };
    if (task.state === 'queued') {
      this.store.transaction(() => {
        this.store.audit(at, audit);
        this.commit(task.id, { state: 'killed', finishedAt: at, killRequested: true, message: 'cancelled while queued' }, 'task.killed', { queued: true });
      });
      // It may have been the head the queue was waiting on: those behind it may fit now.
      this.pump();
      return this.store.get(task.id);
    }
    this.store.transaction(() => {
      this.store.audit(at, audit);
      this.commit(task.id, { killRequested: true }, 'task.kill-requested', { signal: signalName(signal) });
    });
    if (task.pid !== null && task.pidStartTime !== null && isSameLiveProcess(task.pid, task.pidStartTime)) {
      signalGroup(task.pid, signal);
      this.scheduleHardKill(task, options.graceMs ?? this.options.killGraceMs);
    }
    return this.store.get(task.id);
  }

  private scheduleHardKill(task: Task, graceMs: number): void {
    if (this.killTimers.has(task.id) || task.pid === null || task.pidStartTime === null) return;
    const { pid, pidStartTime } = task;
    const timer = setTimeout(() => {
      this.killTimers.delete(task.id);
      if (isSameLiveProcess(pid, pidStartTime)) {
        this.log.warn({ task: task.id, taskPid: pid }, 'task outlived its kill grace period; sending SIGKILL');
        signalGroup(pid, 9);
      }
    }, graceMs);
    timer.unref();
    this.killTimers.set(task.id, timer);
  }

  private admit(input: SubmitInput, tenant: string | null) {
    if (input.command.length === 0 || input.command[0] === '') throw new GsError(ErrorCodes.invalidArgument, 'command: is empty; give the program to run and its arguments');
    if (input.command.length > MAX_COMMAND_ARGS) throw new GsError(ErrorCodes.invalidArgument, `command: has ${input.command.length} arguments; at most ${MAX_COMMAND_ARGS}`);
    const parsed = parseSliceRequest(input);
    if (!parsed.ok) throw new GsError(ErrorCodes.invalidArgument, describeIssues(parsed.issues), { details: { issues: parsed.issues } });
    const request = parsed.value;
    if (request.isolation === 'mig') {
      throw new GsError(ErrorCodes.unsatisfiable, 'isolation: mig is not supported by gpushare serve yet (MIG instances are not managed by the daemon); use time-slice, sm-partition or exclusive', {
        details: { issues: [{ field: 'isolation', code: 'unknownValue', message: 'mig is not supported by the daemon yet' }] },
      });
    }
    const gpus = this.options.backend.gpus();
    const issues = checkRequestAgainstGpus(request, gpus);
    if (issues.length > 0) throw new GsError(ErrorCodes.unsatisfiable, describeIssues(issues), { details: { issues } });
    // Could it run on this machine with nothing else on it? If not, it would block the queue forever.
    const empty = buildSnapshot([this.node]);
    const decision = schedule(empty, placementRequest({ id: 'admission', request, tenant: null }), { policy: this.policy, rng: createPrng(1) });
    if (decision.status !== 'ok') throw new GsError(ErrorCodes.unsatisfiable, `can never run here: ${describeDecision(decision)}`);
    // Within its tenant's quota with nothing else of the tenant running? Otherwise it could never start.
    const quota = tenant === null ? undefined : this.store.tenants.find(tenant);
    if (tenant !== null && quota) {
      const alone = schedule(buildSnapshot([this.node], [], quotaMap([quota])), placementRequest({ id: 'admission', request, tenant }), { policy: this.policy, rng: createPrng(1) });
      if (alone.status !== 'ok') {
        throw new GsError(ErrorCodes.quotaExceeded, `exceeds tenant "${tenant}"'s quota, so it could never start: ${describeQuotaRefusal(alone)}`, { details: { quota: quota.quota } });
      }
    }
    return request;
  }

  private tenantFor(asked: string | undefined, principal: Principal): string | null {
    if (principal.role === 'admin') return asked ?? principal.tenant;
    if (asked !== undefined && asked !== principal.tenant) throw new GsError(ErrorCodes.forbidden, `tenant "${principal.tenant}" may not submit for tenant "${asked}"`);
    return principal.tenant;
  }

  /**
   * Starts queued tasks in queue order while they fit. The first that does not fit stops the
   * pass: later, smaller tasks do not jump it (no backfill), so big tasks are never starved.
   */
  private pump(): void {
    this.blockedAt = null;
    if (this.closed) return;
    const all = this.store.list();
    const queued = all.filter((t) => t.state === 'queued').sort(queueOrder);
    if (queued.length === 0) return;
    this.node = localNode(this.options.backend.gpus());
    const quotas = quotaMap(this.store.tenants.list());
    let snapshot = currentSnapshot(this.node, all.filter((t) => t.state === 'running'), quotas);
    for (const task of queued) {
      const decision = schedule(snapshot, placementRequest(task), { policy: this.policy, rng: this.rng });
      if (decision.status !== 'ok') {
        // Held back only by its own tenant's quota: it waits without holding up other tenants.
        if (task.tenant !== null && quotas.has(task.tenant) && schedule({ ...snapshot, quotas: new Map() }, placementRequest(task), { policy: this.policy, rng: createPrng(1) }).status === 'ok') {
          const why = `waiting for tenant quota: ${describeQuotaRefusal(decision)}`;
          if (task.message !== why) this.store.update(task.id, { message: why });
          continue;
        }
        this.blockedAt = { priority: task.priority, seq: task.seq };
        break;
      }
      snapshot = withPlacement(snapshot, decision.placement);
      this.startTask(task, taskGpus(decision.placement, this.node));
    }
  }

  private startTask(task: Task, gpus: readonly TaskGpu[]): void {
    const files = taskFiles(this.options.stateDir, task.id);
    if (!existsSync(task.cwd)) {
      this.commit(task.id, { state: 'failed', finishedAt: this.now(), message: `its working directory ${task.cwd} no longer exists` }, 'task.ended', { state: 'failed' });
      return;
    }
    const limit = computeLimitPercent(task);
    const env = taskEnvironment(this.options.baseEnv ?? process.env, task, gpus, limit);
    const at = this.now();
    try {
      const launched = launch(task, env, this.options.native, files.status);
      this.commit(task.id, { state: 'running', gpus, computeLimitPercent: limit, pid: launched.pid, pidStartTime: launched.startTime, startedAt: at, message: null }, 'task.started', {
        pid: launched.pid,
        gpus: gpus.map((g) => g.uuid),
      });
      this.supervisor.watchChild(task.id, launched.child, files.status, task.regionPath);
      this.log.info({ task: task.id, taskPid: launched.pid, gpus: gpus.map((g) => g.index) }, 'task started');
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.commit(task.id, { state: 'failed', finishedAt: at, message }, 'task.ended', { state: 'failed' });
      this.log.error({ task: task.id, err }, 'task could not be started');
    }
  }

  private ended(id: string, ending: Ending, atStart = false): void {
    const timer = this.killTimers.get(id);
    if (timer) clearTimeout(timer);
    this.killTimers.delete(id);
    const task = this.store.get(id);
    if (task.state !== 'running') return;
    const outcome = describeEnding(task, ending, atStart);
    this.commit(id, { ...outcome, finishedAt: this.now(), peakMemoryBytes: ending.peakMemoryBytes ?? task.peakMemoryBytes }, 'task.ended', {
      state: outcome.state,
      exitCode: outcome.exitCode,
      signal: outcome.signal,
    });
    this.log.info({ task: id, ...outcome }, 'task ended');
    if (!atStart) this.pump();
  }

  /** Updates a task and records the event in one transaction, then tells listeners. */
  private commit(id: string, change: Parameters<TaskStore['update']>[1], type: string, data: Record<string, unknown>): void {
    const event = this.store.transaction(() => {
      this.store.update(id, change);
      return this.store.recordEvent(this.now(), type, id, data);
    });
    this.emit(event);
  }

  private emit(event: EventRecord): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch (err) {
        this.log.error({ err }, 'event listener failed');
      }
    }
  }
}

/** A quota refusal in one line: the quota's own reason, not the whole scheduler explanation. */
function describeQuotaRefusal(d: ReturnType<typeof schedule>): string {
  if (d.status === 'unresolvable' && d.reason.kind === 'quotaExceeded') {
    const r = d.reason;
    const fmt = (v: number): string => (r.resource === 'memoryBytes' ? formatBytes(v) : r.resource === 'computeMilli' ? `${v / 10}%` : String(v));
    const what = r.resource === 'computeMilli' ? 'compute' : r.resource === 'memoryBytes' ? 'memory' : 'GPU';
    return `its ${what} quota is ${fmt(r.limit)}; ${fmt(r.used)} in use + ${fmt(r.requested)} asked`;
  }
  if (d.status === 'unschedulable') {
    for (const rej of d.rejections) {
      const q = rej.reason.kind === 'tooFewGpus' ? rej.reason.gpus.find((g) => g.kind === 'quotaMemory') : undefined;
      if (q?.kind === 'quotaMemory') return `asks ${formatBytes(q.requestedBytes)} of GPU memory; ${formatBytes(q.remainingBytes)} of its memory quota is left`;
    }
  }
  return describeDecision(d);
}

function canSee(principal: Principal, task: Task): boolean {
  return principal.role === 'admin' || task.tenant === principal.tenant;
}

function checkCwd(cwd: string): string {
  if (!isAbsolute(cwd)) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not an absolute path`);
  if (!existsSync(cwd) || !statSync(cwd).isDirectory()) throw new GsError(ErrorCodes.invalidArgument, `cwd: "${cwd}" is not an existing directory on the daemon's machine`);
  return cwd;
}

const ERRNO = getSystemErrorMap();

/** The task's final state from what the wrapper and waitpid say; honest about what is unknown. */
export function describeEnding(task: Task, ending: Ending, atStart: boolean): { state: TaskState; exitCode: number | null; signal: string | null; message: string | null } {
  const killed = task.killRequested;
  const s = ending.status;
  if (s?.kind === 'error') {
    const [name, text] = ERRNO.get(-s.errno) ?? [`errno ${s.errno}`, 'unknown error'];
    return { state: 'failed', exitCode: null, signal: null, message: `cannot run "${task.command[0]}": ${text} (${name})` };
  }
  if (s?.kind === 'exit') return { state: killed ? 'killed' : 'exited', exitCode: s.code, signal: null, message: null };
  if (s?.kind === 'signal') return { state: killed ? 'killed' : 'exited', exitCode: null, signal: signalName(s.signal), message: null };
  // No status file: the wrapper itself died (SIGKILL to the group), or the process vanished while no daemon watched.
  if (ending.wrapper?.signal) return { state: killed ? 'killed' : 'exited', exitCode: null, signal: ending.wrapper.signal, message: null };
  if (ending.wrapper && ending.wrapper.code !== null) return { state: killed ? 'killed' : 'failed', exitCode: ending.wrapper.code, signal: null, message: 'the task wrapper wrote no exit status' };
  const why = atStart ? 'its process was gone when the daemon restarted' : 'its process ended while not a child of this daemon';
  return { state: killed ? 'killed' : 'lost', exitCode: null, signal: null, message: `${why} and left no exit status (killed with SIGKILL?); how it ended is unknown` };
}
