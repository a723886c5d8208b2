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
import { checkRequestAgainstGpus, describeIssues, describeSmUnsupported, ErrorCodes, formatBytes, GsError, parseSliceRequest, type SmGroups } from '../domain/index.js';
import type { GpuSlice, GpuWithSlices } from '../contract/gpus.js';
import type { Principal } from '../contract/principal.js';
import type { SubmitInput } from '../contract/task.js';
import type { GpuBackend } from '../gpu/backend.js';
import type { CheckpointApi, GpuPair } from '../gpu/checkpoint.js';
import { readRegion } from '../gpu/region/index.js';
import { buildSnapshot, createPrng, describeDecision, describeGpuReason, describePartitionTooLarge, isPartitionReason, parsePolicy, planPreemption, schedule, withPlacement, type ClusterSnapshot, type Decision, type GpuReason, type NodeSpec, type Placement, type Policy, type Prng, type TenantQuota } from '../scheduler/index.js';
import { launch, readExitStatus, taskEnvironment, taskFiles, type NativePaths } from './launcher.js';
import type { MpsControl } from './mps.js';
import { computeLimitPercent, currentSnapshot, localNode, placementRequest, rangesOnto, taskGpus, taskPlacement, taskSmRanges } from './placement.js';
import { isSameLiveProcess, signalGroup, signalName, signalNumber } from './proc.js';
import type { AuditEntry, AuditRecord, EventRecord, TaskStore } from './store/tasks.js';
import { cudaStates, resumeGroup, suspendGroup } from './suspend.js';

import type { Quota } from './store/tenants.js';
import { checkTenantName, parseQuota, quotaMap, tenantViews, type QuotaInput, type TenantView } from './tenants.js';
import { Supervisor, type Ending } from './supervisor.js';
import { HOLDING_STATES, LIVE_STATES, STARTED_STATES, type Task, type TaskGpu, type TaskSmRange, type TaskState } from '../contract/task.js';
import { queueOrder } from './task.js';

/**
 * What a higher-priority task that does not fit may do to lower-priority ones: `suspend` them
 * (never kill; the default), `suspend-then-kill` (kill those that cannot be suspended, the last
 * resort), or nothing (`off`).
 */
export const PREEMPTION_POLICIES = ['suspend', 'suspend-then-kill', 'off'] as const;
export type PreemptionPolicy = (typeof PREEMPTION_POLICIES)[number];



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
  /** The CUDA checkpoint API; null: suspend, resume and preemption by suspension are unavailable (`checkpointProblem` says why). */
  readonly checkpoint?: CheckpointApi | null;
  readonly checkpointProblem?: string;
  readonly preemption?: PreemptionPolicy;
  /** How long lock may wait for a task's GPU work to drain; 0: as long as it takes. */
  readonly lockTimeoutMs?: number;
  /** The MPS control daemon sm-partition tasks run under (mps.ts); null or absent: none. */
  readonly mps?: MpsControl | null;
  /** What the driver groups of each GPU's SMs, by UUID (smgroups.ts); absent GPUs: every whole group of 8. */
  readonly smGroups?: ReadonlyMap<string, SmGroups>;
}

export type EventListener = (event: EventRecord) => void;


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
  /** Suspensions and resumptions in flight, by task. */
  private readonly busy = new Map<string, Promise<unknown>>();
  /** Where a resuming task goes (its record keeps its old GPUs until the restore succeeded). */
  private readonly resumeTargets = new Map<string, readonly TaskGpu[]>();
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
    this.node = localNode(options.backend.gpus(), options.smGroups);
    this.supervisor = new Supervisor({ onEnd: (id, ending) => this.ended(id, ending) });
  }

  /** Reconciles with what survived the last daemon, then starts whatever fits. */
  start(): void {
    for (const task of this.store.list().filter((t) => STARTED_STATES.has(t.state))) {
      const files = taskFiles(this.options.stateDir, task.id);
      if (task.pid !== null && task.pidStartTime !== null && isSameLiveProcess(task.pid, task.pidStartTime)) {
        this.supervisor.watchAdopted(task.id, task.pid, task.pidStartTime, files.status, task.regionPath);
        this.commit(task.id, { adopted: true }, 'task.adopted', { pid: task.pid, state: task.state });
        this.log.info({ task: task.id, taskPid: task.pid, state: task.state }, 're-adopted task');
        if (task.state === 'suspending' || task.state === 'resuming') this.reconcile(task);
      } else {
        this.ended(task.id, { status: readExitStatus(files.status), wrapper: null, peakMemoryBytes: task.peakMemoryBytes }, true);
      }
    }
    // Partitions that outlived the last daemon are clients of its MPS control daemon: adopt it
    // now, so that it is known (and stopped only once they are gone).
    if (this.partitionClients() > 0) this.options.mps?.ensure();
    this.pump();
  }

  /** sm-partition tasks whose processes exist (MPS clients, or about to be). */
  partitionClients(): number {
    return this.store.list().filter((t) => STARTED_STATES.has(t.state) && t.request.isolation === 'sm-partition').length;
  }

  close(): void {
    if (!this.closed) this.options.mps?.stop(this.partitionClients());
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

  /** Events after `since`: all of them, or (`tenant`) that tenant's tasks' only. Who may read which is the API's call (api/authorize.ts), as for every method here. */
  events(since: number, limit: number, tenant?: string): EventRecord[] {
    return this.store.events(since, limit, tenant);
  }

  auditLog(since: number, limit: number): AuditRecord[] {
    return this.store.auditLog(since, limit);
  }

  /** Records a change the API refused, so the audit log shows attempts as well as changes. */
  recordRefusal(principal: Principal, entry: Omit<AuditEntry, 'actor' | 'role'>): void {
    this.store.audit(this.now(), { ...entry, actor: principal.actor, role: principal.role });
  }

  tenants(): TenantView[] {
    return tenantViews(this.store, this.usage());
  }

  tenant(name: string): TenantView {
    const view = this.tenants().find((v) => v.name === name);
    if (!view) throw new GsError(ErrorCodes.notFound, `no tenant "${name}"`);
    return view;
  }

  createTenant(name: string, quota: QuotaInput, principal: Principal): TenantView {
    checkTenantName(name);
    const parsed = parseQuota(quota);
    const at = this.now();
    this.store.transaction(() => {
      this.store.tenants.create(name, parsed, at);
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'tenant.create', target: name, detail: { quota: parsed } });
    });
    return this.tenant(name);
  }

  /** Changes a tenant's quota; lowering it below what runs now stops nothing, it holds back what is queued. */
  setQuota(name: string, quota: QuotaInput, principal: Principal): TenantView {
    const at = this.now();
    this.store.transaction(() => {
      const before = this.store.tenants.get(name).quota;
      const after = parseQuota(quota, before);
      this.store.tenants.setQuota(name, after, at);
      this.store.audit(at, { actor: principal.actor, role: principal.role, action: 'tenant.set-quota', target: name, detail: { before, after } });
    });
    this.pump(); // a raised quota may let queued tasks start
    return this.tenant(name);
  }

  deleteTenant(name: string, principal: Principal): void {
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
    return currentSnapshot(this.node, this.store.list().filter((t) => HOLDING_STATES.has(t.state))).usage;
  }

  /** GPUs with their slices, whoever's they are. */
  gpus(): GpuWithSlices[] {
    const gpus = this.options.backend.gpus();
    const running = this.store.list().filter((t) => HOLDING_STATES.has(t.state));
    return gpus.map((g) => {
      const slices = running.flatMap((t) => {
        const usage = this.supervisor.usage(t.id);
        return (this.resumeTargets.get(t.id) ?? t.gpus ?? []).flatMap((x, ordinal): GpuSlice[] => {
          if (x.uuid !== g.uuid) return [];
          const used = usage === null ? null : (usage.find((u) => u.device === ordinal) ?? { memoryBytes: 0, computeShare: 0 });
          const sm = t.smRanges?.[ordinal];
          return [
            {
              taskId: t.id,
              tenant: t.tenant,
              priority: t.priority,
              memoryBytes: x.memoryBytes,
              computeMilli: x.computeMilli,
              usedMemoryBytes: used?.memoryBytes ?? null,
              computeShare: used?.computeShare ?? null,
              smRange: sm === undefined ? null : { offset: sm.offset, count: sm.count },
            },
          ];
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

  list(all: boolean): Task[] {
    return this.store.list(all);
  }

  get(idOrPrefix: string): Task {
    return this.store.resolve(idOrPrefix);
  }

  /**
   * Validates everything first: a refused submission leaves no trace but its error. Filed under
   * the tenant asked, else the submitter's (`principal`: who asks, for the audit log).
   */
  submit(input: SubmitInput, principal: Principal): Task {
    const tenant = input.tenant ?? principal.tenant;
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
    const task = this.get(idOrPrefix);
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
      // A suspended group is stopped: it only receives the signal once continued. It dies
      // without its GPU state ever being restored (the driver frees the host copy with it).
      if (task.state !== 'running') signalGroup(task.pid, SIGCONT);
      this.scheduleHardKill(task, options.graceMs ?? this.options.killGraceMs);
    }
    return this.store.get(task.id);
  }

  /**
   * Suspends a running task: its GPU memory goes to host memory and its processes stop; its
   * GPUs are free for others. It stays suspended until resumed (`resume`).
   */
  async suspend(idOrPrefix: string, principal: Principal): Promise<Task> {
    const task = this.get(idOrPrefix);
    this.checkSuspendable(task);
    this.store.audit(this.now(), { actor: principal.actor, role: principal.role, action: 'task.suspend', target: task.id, detail: {} });
    const result = await this.suspendTask(task, { preemptedBy: null, autoResume: false, by: principal.actor });
    if (!result.ok) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id} could not be suspended and goes on running: ${result.message}`, { details: { checkpointCode: result.code } });
    return this.store.get(task.id);
  }

  /**
   * Resumes a suspended task on its GPUs, or on other GPUs of the same model. Without room now,
   * it stays suspended and resumes by itself as soon as room returns (`autoResume`).
   */
  async resume(idOrPrefix: string, principal: Principal): Promise<Task> {
    const task = this.get(idOrPrefix);
    if (task.state !== 'suspended') throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a suspended task can be resumed`);
    if (!this.options.checkpoint) throw new GsError(ErrorCodes.checkpointUnavailable, `cannot resume: ${this.checkpointProblem()}`);
    this.store.transaction(() => {
      this.store.audit(this.now(), { actor: principal.actor, role: principal.role, action: 'task.resume', target: task.id, detail: {} });
      this.store.update(task.id, { autoResume: true, message: null });
    });
    this.pump();
    const op = this.busy.get(task.id);
    if (op) await op;
    const after = this.store.get(task.id);
    if (after.state === 'suspended' && after.message !== null && after.message.startsWith('resume failed')) throw new GsError(ErrorCodes.checkpointFailed, `task ${task.id}: ${after.message}; it stays suspended and is retried when room changes`);
    return after;
  }

  private checkpointProblem(): string {
    return this.options.checkpointProblem ?? 'the CUDA checkpoint API is not available';
  }

  private checkSuspendable(task: Task): void {
    if (task.state !== 'running') throw new GsError(ErrorCodes.conflict, `task ${task.id} is ${describeState(task)}; only a running task can be suspended`);
    if (task.killRequested) throw new GsError(ErrorCodes.conflict, `task ${task.id} is being killed; it cannot be suspended`);
    if (!this.options.checkpoint) throw new GsError(ErrorCodes.checkpointUnavailable, `cannot suspend: ${this.checkpointProblem()}`);
  }

  /** Starts a suspension; the promise says how it went (the task is back to running if it failed). */
  private suspendTask(task: Task, why: { preemptedBy: string | null; autoResume: boolean; by: string }): Promise<{ ok: true } | { ok: false; code: string; message: string }> {
    const api = this.options.checkpoint;
    const pid = task.pid;
    if (!api || pid === null) return Promise.resolve({ ok: false, code: ErrorCodes.checkpointUnavailable, message: this.checkpointProblem() });
    this.commit(task.id, { state: 'suspending', preemptedBy: why.preemptedBy, autoResume: why.autoResume }, 'task.suspending', { by: why.by, preemptedBy: why.preemptedBy });
    const bytes = regionBytes(task.regionPath);
    const started = performance.now();
    const op = (async () => {
      const r = await suspendGroup(api, pid, this.options.lockTimeoutMs ?? 0);
      this.busy.delete(task.id);
      if (this.closed || this.store.get(task.id).state !== 'suspending') return r.ok ? { ok: true as const } : { ok: false as const, code: r.error.code, message: r.error.message };
      const ms = Math.round(performance.now() - started);
      if (r.ok) {
        this.commit(task.id, { state: 'suspended', suspendedAt: this.now(), suspensions: task.suspensions + 1, message: null }, 'task.suspended', { ms, gpuBytes: bytes, processes: r.pids.length, preemptedBy: why.preemptedBy });
        this.log.info({ task: task.id, ms, gpuBytes: bytes, preemptedBy: why.preemptedBy }, 'task suspended');
      } else {
        this.commit(task.id, { state: 'running', preemptedBy: null, autoResume: false }, 'task.suspend-failed', { code: r.error.code, cudaResult: r.error.cudaResult, message: r.error.message });
        this.log.warn({ task: task.id, err: r.error }, 'suspend failed; the task goes on running');
        if (why.preemptedBy !== null && this.options.preemption === 'suspend-then-kill') this.evict(this.store.get(task.id), why.preemptedBy, `could not be suspended (${r.error.message})`);
      }
      this.pump();
      return r.ok ? { ok: true as const } : { ok: false as const, code: r.error.code, message: r.error.message };
    })();
    this.busy.set(task.id, op);
    return op;
  }

  /** Starts resuming a suspended task onto `gpus` (its own, or others of the same model). */
  private resumeTask(task: Task, gpus: readonly TaskGpu[]): void {
    const api = this.options.checkpoint;
    const pid = task.pid;
    if (!api || pid === null) return;
    const old = task.gpus ?? [];
    const moved = old.length === gpus.length && old.some((g, i) => g.uuid !== gpus[i]?.uuid);
    // The driver maps every checkpointed GPU to its new one; CUDA_VISIBLE_DEVICES in the task's
    // environment keeps naming the old UUIDs, and its device ordinals keep their meaning.
    const pairs: GpuPair[] = moved ? old.map((g, i) => ({ from: g.uuid, to: gpus[i]?.uuid ?? g.uuid })) : [];
    this.resumeTargets.set(task.id, gpus);
    this.commit(task.id, { state: 'resuming' }, 'task.resuming', { gpus: gpus.map((g) => g.uuid), moved });
    const bytes = regionBytes(task.regionPath);
    const started = performance.now();
    const op = (async () => {
      const r = await resumeGroup(api, pid, pairs);
      this.busy.delete(task.id);
      this.resumeTargets.delete(task.id);
      if (this.closed || this.store.get(task.id).state !== 'resuming') return;
      const ms = Math.round(performance.now() - started);
      if (r.ok) {
        this.commit(task.id, { state: 'running', gpus, smRanges: rangesOnto(task.smRanges, gpus), preemptedBy: null, autoResume: false, message: null }, 'task.resumed', { ms, gpuBytes: bytes, gpus: gpus.map((g) => g.uuid), moved, processes: r.pids.length });
        this.log.info({ task: task.id, ms, moved }, 'task resumed');
      } else {
        this.commit(task.id, { state: 'suspended', message: `resume failed: ${r.error.message}` }, 'task.resume-failed', { code: r.error.code, cudaResult: r.error.cudaResult, message: r.error.message });
        this.log.warn({ task: task.id, err: r.error }, 'resume failed; the task stays suspended');
        return;
      }
      this.pump();
    })();
    this.busy.set(task.id, op);
  }

  /**
   * After a restart, a task caught halfway through a suspension or resumption: a resumption
   * whose CUDA processes all run is done; anything else is suspended (finishing the
   * suspension), and resumes like any other suspended task. A suspension is finished even when
   * every process still reads as running: the dead daemon's lock may still be under way in the
   * driver, and a task left running beside it would lock up later with nobody to unlock it.
   */
  private reconcile(task: Task): void {
    const api = this.options.checkpoint;
    const pid = task.pid;
    if (pid === null) return;
    const found = api ? cudaStates(api, pid) : null;
    const allRunning = found !== null && found.ok && [...found.states.values()].every((s) => s === 'running');
    if (!api || (allRunning && task.state === 'resuming')) {
      signalGroup(pid, SIGCONT);
      this.commit(task.id, { state: 'running', preemptedBy: null, autoResume: false }, 'task.reconciled', { state: 'running' });
      return;
    }
    const op = (async () => {
      const r = await suspendGroup(api, pid, this.options.lockTimeoutMs ?? 0);
      this.busy.delete(task.id);
      if (this.closed || !STARTED_STATES.has(this.store.get(task.id).state)) return;
      if (r.ok) this.commit(task.id, { state: 'suspended', autoResume: true, suspendedAt: this.now() }, 'task.reconciled', { state: 'suspended' });
      else this.commit(task.id, { state: 'running', preemptedBy: null, autoResume: false, message: `left running after a restart: ${r.error.message}` }, 'task.reconciled', { state: 'running', message: r.error.message });
      this.pump();
    })();
    this.busy.set(task.id, op);
  }

  /** Kills a preemption victim that cannot be suspended (policy suspend-then-kill). */
  private evict(victim: Task, by: string, why: string): void {
    if (victim.state !== 'running' || victim.pid === null || victim.pidStartTime === null) return;
    this.commit(victim.id, { killRequested: true, message: `preempted by task ${by}: killed because it ${why}` }, 'task.evicted', { preemptedBy: by });
    if (isSameLiveProcess(victim.pid, victim.pidStartTime)) {
      signalGroup(victim.pid, 15);
      this.scheduleHardKill(victim, this.options.killGraceMs);
    }
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
    if (decision.status !== 'ok') {
      if (request.isolation === 'sm-partition') refusePartition(decision, request.gpus);
      throw new GsError(ErrorCodes.unsatisfiable, `can never run here: ${describeDecision(decision)}`);
    }
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

  /**
   * Starts queued tasks in queue order while they fit. The first that does not fit stops the
   * pass: later, smaller tasks do not jump it (no backfill), so big tasks are never starved.
   */
  private pump(): void {
    this.blockedAt = null;
    if (this.closed) return;
    const all = this.store.list();
    // Suspended tasks waiting for room take their turn in the queue's order, like queued ones.
    const waiting = all.filter((t) => t.state === 'queued' || (t.state === 'suspended' && t.autoResume && !this.busy.has(t.id))).sort(queueOrder);
    if (waiting.length === 0) return;
    this.node = localNode(this.options.backend.gpus(), this.options.smGroups);
    const quotas = quotaMap(this.store.tenants.list());
    let snapshot = this.snapshot(all, quotas);
    for (const task of waiting) {
      if (task.state === 'suspended') {
        const placement = this.resumePlacement(snapshot, task);
        if (placement === null) break;
        snapshot = withPlacement(snapshot, placement);
        this.resumeTask(task, taskGpus(placement, this.node));
        continue;
      }
      const decision = this.place(snapshot, task);
      const partitionWhy = waitingForSms(decision, task.request.gpus);
      if (partitionWhy !== null) {
        // There is room, but no GPU has its SMs in a row free (or its GPUs run the other kind
        // of work): it waits for a partition to end, holding the queue like any task that does
        // not fit. Preemption is not asked: it frees compute, not SM ranges.
        const why = `waiting for SMs: ${partitionWhy}`;
        if (task.message !== why) this.store.update(task.id, { message: why });
        this.blockedAt = { priority: task.priority, seq: task.seq };
        break;
      }
      if (decision.status !== 'ok') {
        // Held back only by its own tenant's quota: it waits without holding up other tenants.
        if (task.tenant !== null && quotas.has(task.tenant) && schedule({ ...snapshot, quotas: new Map() }, placementRequest(task), { policy: this.policy, rng: createPrng(1) }).status === 'ok') {
          const why = `waiting for tenant quota: ${describeQuotaRefusal(decision)}`;
          if (task.message !== why) this.store.update(task.id, { message: why });
          continue;
        }
        // One preemption at a time: while victims are being suspended, wait for them.
        if (!all.some((t) => t.state === 'suspending')) this.preempt(snapshot, task);
        this.blockedAt = { priority: task.priority, seq: task.seq };
        break;
      }
      snapshot = withPlacement(snapshot, decision.placement);
      this.startTask(task, taskGpus(decision.placement, this.node), taskSmRanges(decision.placement, this.node));
    }
  }

  /** Where the scheduler puts `task` (an sm-partition task with its SM ranges, on GPUs free of time-sliced work). */
  private place(snapshot: ClusterSnapshot, task: Task): Decision {
    return schedule(snapshot, placementRequest(task), { policy: this.policy, rng: this.rng });
  }

  /**
   * The machine as the scheduler sees it: tasks that hold GPUs (running, suspending, resuming
   * onto their targets). Suspended tasks hold nothing. Placements with an operation in flight are
   * out of the planner's reach (priority beyond any task's).
   */
  private snapshot(all: readonly Task[], quotas: ReadonlyMap<string, TenantQuota> = new Map()): ClusterSnapshot {
    const placements: Placement[] = [];
    for (const t of all) {
      if (!HOLDING_STATES.has(t.state)) continue;
      const target = this.resumeTargets.get(t.id);
      const p = taskPlacement(target ? { ...t, gpus: target } : t, this.node);
      if (!p) continue;
      const locked = this.busy.has(t.id) || t.state !== 'running' || t.killRequested;
      placements.push({ ...p, suspendable: this.options.checkpoint != null, priority: locked ? Number.MAX_SAFE_INTEGER : p.priority });
    }
    return buildSnapshot([this.node], placements, quotas);
  }

  /**
   * Its own GPUs if they have room again, else other GPUs of the same model (restore remaps
   * them), else null. A partition resumes on its own SMs (the scheduler is asked for those ranges).
   */
  private resumePlacement(snapshot: ClusterSnapshot, task: Task): Placement | null {
    const old = task.gpus ?? [];
    const tryRequest = (request: Task['request']): Placement | null => {
      const d = schedule(snapshot, placementRequest({ ...task, request }, task.smRanges), { policy: this.policy, rng: this.rng });
      return d.status === 'ok' ? d.placement : null;
    };
    if (old.length === 0) return tryRequest(task.request);
    const same = tryRequest({ ...task.request, uuids: { include: old.map((g) => g.uuid), exclude: [] } });
    if (same) return same;
    const models = [...new Set(old.map((g) => this.node.gpus.find((s) => s.uuid === g.uuid)?.model))];
    if (models.length !== 1 || models[0] === undefined) return null;
    return tryRequest({ ...task.request, models: { include: [models[0]], exclude: [] }, uuids: { include: [], exclude: [] } });
  }

  /** Makes room for `task` by suspending (or, by policy, killing) the lower-priority tasks the planner names. */
  private preempt(snapshot: ClusterSnapshot, task: Task): void {
    const policy = this.options.preemption ?? 'suspend';
    if (policy === 'off') return;
    const plan = planPreemption(snapshot, { ...placementRequest(task), suspendable: this.options.checkpoint != null }, { policy: this.policy, rng: createPrng(task.seq) });
    if (!plan) return;
    if (plan.actions.some((a) => a.action === 'evict') && policy !== 'suspend-then-kill') {
      this.log.info({ task: task.id, reason: this.options.checkpoint ? 'victims cannot be suspended' : this.checkpointProblem() }, 'preemption would need kills; policy "suspend" never kills');
      return;
    }
    const victims = plan.actions.map((a) => ({ task: this.store.get(a.placement.id), action: a.action }));
    this.emit(this.store.recordEvent(this.now(), 'task.preempting', task.id, { victims: victims.map((v) => ({ id: v.task.id, action: v.action })) }));
    this.log.info({ task: task.id, victims: victims.map((v) => `${v.task.id}:${v.action}`) }, 'preempting lower-priority tasks');
    for (const v of victims) {
      if (v.action === 'suspend') void this.suspendTask(v.task, { preemptedBy: task.id, autoResume: true, by: `preemption:${task.id}` });
      else this.evict(v.task, task.id, 'cannot be suspended');
    }
  }

  private startTask(task: Task, gpus: readonly TaskGpu[], smRanges: TaskSmRange[] | null): void {
    const files = taskFiles(this.options.stateDir, task.id);
    if (!existsSync(task.cwd)) {
      this.commit(task.id, { state: 'failed', finishedAt: this.now(), message: `its working directory ${task.cwd} no longer exists` }, 'task.ended', { state: 'failed' });
      return;
    }
    const limit = computeLimitPercent(task);
    const at = this.now();
    let message: string | null = null;
    let mpsPipeDir: string | null = null;
    if (smRanges !== null) {
      const mps = this.options.mps?.ensure() ?? { pipeDir: null, problem: 'this daemon has no MPS control' };
      if (mps.pipeDir === null && this.options.mps?.status().mode === 'on') {
        this.commit(task.id, { state: 'failed', finishedAt: at, message: `not started: MPS is required (mps: on) but ${mps.problem}` }, 'task.ended', { state: 'failed' });
        return;
      }
      mpsPipeDir = mps.pipeDir;
      // Said on the task, so whoever wonders why its partition is slow sees it.
      if (mpsPipeDir === null) message = `running without MPS (${mps.problem}): SM partitions on one GPU take turns instead of running at once`;
    }
    try {
      const env = taskEnvironment(this.options.baseEnv ?? process.env, task, gpus, limit, smRanges === null ? null : { ranges: smRanges, mpsPipeDir });
      const launched = launch(task, env, this.options.native, files.status);
      this.commit(task.id, { state: 'running', gpus, smRanges, computeLimitPercent: limit, pid: launched.pid, pidStartTime: launched.startTime, startedAt: at, message }, 'task.started', {
        pid: launched.pid,
        gpus: gpus.map((g) => g.uuid),
        ...(smRanges !== null ? { smRanges: smRanges.map((r) => ({ uuid: r.uuid, offset: r.offset, count: r.count })), mps: mpsPipeDir !== null } : {}),
      });
      this.supervisor.watchChild(task.id, launched.child, files.status, task.regionPath);
      this.log.info({ task: task.id, taskPid: launched.pid, gpus: gpus.map((g) => g.index), ...(smRanges !== null ? { smRanges } : {}) }, 'task started');
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
    if (!STARTED_STATES.has(task.state)) return;
    this.resumeTargets.delete(id);
    const outcome = describeEnding(task, ending, atStart);
    // A reason recorded before the end (an eviction by preemption) outlives a plain signal ending.
    this.commit(id, { ...outcome, message: outcome.message ?? task.message, finishedAt: this.now(), peakMemoryBytes: ending.peakMemoryBytes ?? task.peakMemoryBytes }, 'task.ended', {
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

const SIGCONT = 18;

/** `queued`, `already suspended`, `ended (exited)`: a task's state in an error message. */
function describeState(task: Task): string {
  switch (task.state) {
    case 'queued':
      return 'queued (not started yet)';
    case 'suspended':
      return 'already suspended';
    case 'suspending':
      return 'being suspended';
    case 'resuming':
      return 'being resumed';
    case 'running':
      return 'running';
    default:
      return `already ended (${task.state})`;
  }
}

/** GPU memory the task's processes hold now, as libgpushare counts it; null without a region. */
function regionBytes(path: string): number | null {
  try {
    let bytes = 0;
    for (const slot of readRegion(path).slots) for (const d of slot.devices) bytes += d.limitedBytes;
    return bytes;
  } catch {
    return null;
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

/** The GPU reasons of a one-node decision that found no room (none for any other). */
function gpuReasons(decision: Decision): readonly GpuReason[] {
  if (decision.status !== 'unschedulable') return [];
  const r = decision.rejections[0]?.reason;
  return r?.kind === 'tooFewGpus' ? r.gpus : [];
}

/**
 * Why a task waits for SMs rather than for room, or null: enough GPUs had room for it but for
 * SM partitions (the scheduler's partition filter runs last, so a GPU it refused passed every
 * other check). Said from the structured reasons.
 */
function waitingForSms(decision: Decision, gpus: number): string | null {
  if (decision.status !== 'unschedulable') return null;
  const r = decision.rejections[0]?.reason;
  if (r?.kind !== 'tooFewGpus') return null;
  const partition = r.gpus.filter(isPartitionReason);
  if (partition.length === 0 || r.eligible + partition.length < gpus) return null;
  return partition.map(describeGpuReason).join('; ');
}

/**
 * Admission of an sm-partition request that cannot run here even alone: the reason the
 * scheduler gave, said of the request (what is wrong and what is accepted). Returns when the
 * refusal is not about partitions (the caller says it in general).
 */
function refusePartition(decision: Decision, gpus: number): void {
  const reasons = gpuReasons(decision);
  const unsupported = reasons.filter((r) => r.kind === 'notPartitionable');
  const first = unsupported[0];
  if (first !== undefined) {
    const selected = reasons.filter((r) => r.kind === 'modelNotSelected' || r.kind === 'uuidNotSelected' || r.kind === 'numaMismatch').length;
    const eligible = decision.status === 'unschedulable' && decision.rejections[0]?.reason.kind === 'tooFewGpus' ? decision.rejections[0].reason.eligible : 0;
    const capable = eligible + reasons.length - unsupported.length - selected;
    if (capable < gpus) {
      const detail = `isolation: ${describeSmUnsupported(first.name, first)}`;
      throw new GsError(ErrorCodes.unsatisfiable, `asks for ${gpus} SM-partitioned GPU(s) but ${capable} here can be partitioned; ${detail}`, {
        details: { issues: [{ field: 'isolation', code: 'unsupported', message: detail }] },
      });
    }
  }
  const tooLarge = reasons.find((r) => r.kind === 'partitionTooLarge');
  if (tooLarge !== undefined) {
    // A partition bigger than the SMs the driver groups could never start (libgpushare refuses it).
    const detail = `compute: ${describePartitionTooLarge(tooLarge)}`;
    throw new GsError(ErrorCodes.unsatisfiable, detail, { details: { issues: [{ field: 'compute', code: 'outOfRange', message: detail }] } });
  }
}
