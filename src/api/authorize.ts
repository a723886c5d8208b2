/**
 * Who may see and do what, decided at the API edge: pure functions over the caller (a Principal)
 * and the record asked about. The daemon (src/node) does what it is told and records who told it;
 * every route asks here first. An admin (the Unix socket's user, or an admin token) sees and
 * does everything; a `user` token sees its own tenant's tasks, events and tenant, and another
 * tenant's task reads as not there at all (404, not 403: its existence is not disclosed).
 */
import type { GpuWithSlices } from '../contract/gpus.js';
import type { MonitorSample } from '../contract/monitor.js';
import type { Principal } from '../contract/principal.js';
import type { Task } from '../contract/task.js';
import { shown } from '../contract/shown.js';
import { ErrorCodes, GsError, PRIORITY_LEVELS } from '../domain/index.js';

/** Refuses (GS_ERR_FORBIDDEN) anyone but an admin; `what` names the action (`creating a tenant`). */
export function requireAdmin(principal: Principal, what: string): void {
  if (principal.role !== 'admin') throw new GsError(ErrorCodes.forbidden, `${what} needs the admin role; tenant "${principal.tenant}" has the user role`);
}

export function canSeeTask(principal: Principal, task: Pick<Task, 'tenant'>): boolean {
  return principal.role === 'admin' || task.tenant === principal.tenant;
}

/** `task` (found as `asked`, an id or prefix) if the caller may see it; otherwise the same 404 as a task that does not exist. */
export function visibleTask(principal: Principal, task: Task, asked: string): Task {
  if (!canSeeTask(principal, task)) throw new GsError(ErrorCodes.notFound, `no task "${asked}"`);
  return task;
}

/** Whose tasks an id or prefix is looked up among (Daemon.get): all for an admin, else the caller's tenant's. */
export function taskScope(principal: Principal): string | undefined {
  return principal.role === 'admin' ? undefined : (principal.tenant ?? '');
}

/** The tasks the caller may see (an admin's list as it is). */
export function visibleTasks(principal: Principal, tasks: Task[]): Task[] {
  return principal.role === 'admin' ? tasks : tasks.filter((t) => canSeeTask(principal, t));
}

/**
 * A visible task as the caller may see it: why it waits names other tasks (the head it waits
 * behind, the tasks preempted for it), `preemptedBy` names the task it was suspended for, and
 * its message may name one ("preempted by task ..."). To a user, a task of another tenant reads
 * as `taskId: null` / `preemptedBy: null`, "another tenant's task" in words, as a slice of
 * theirs on a GPU does. `tenantOf`: a task's tenant by id (undefined: gone, or not a task).
 */
export function taskView(principal: Principal, task: Task, tenantOf: (id: string) => string | null | undefined): Task {
  if (principal.role === 'admin') return task;
  const hidden = (id: string | null): boolean => id !== null && tenantOf(id) !== principal.tenant;
  let view = task;
  if (typeof task.preemptedBy === 'string' && hidden(task.preemptedBy)) view = { ...view, preemptedBy: null };
  // Records built by hand (tests) may leave it out.
  if (typeof task.message === 'string') {
    const message = hideTaskIds(principal, task.message, tenantOf);
    if (message !== task.message) view = { ...view, message };
  }
  const w = task.waiting;
  if (w === null || (w.kind !== 'behind' && w.kind !== 'preempting')) return view;
  const hide = (text: string, id: string): string => text.replaceAll(`task ${id}`, OTHER_TASK).replaceAll(id, OTHER_TASK);
  if (w.kind === 'behind') {
    if (w.taskId === null || !hidden(w.taskId)) return view;
    return { ...view, waiting: { ...w, taskId: null, text: hide(w.text, w.taskId) } };
  }
  const others = w.victims.filter((v) => hidden(v.taskId));
  if (others.length === 0) return view;
  const text = others.reduce((t, v) => (v.taskId === null ? t : hide(t, v.taskId)), w.text);
  return { ...view, waiting: { ...w, victims: w.victims.map((v) => (hidden(v.taskId) ? { ...v, taskId: null } : v)), text } };
}

/** A task id as the daemon makes them (12 hex digits), standing alone in a text. */
const TASK_ID_IN_TEXT = /(?<![0-9a-f])[0-9a-f]{12}(?![0-9a-f])/g;

/**
 * `text` with every id of another tenant's task (one `tenantOf` knows, of a tenant not the
 * caller's) written as "another tenant's task"; anything else that looks like one (a GPU UUID's
 * last group) is left as it is. Admins see the text as it is.
 */
export function hideTaskIds(principal: Principal, text: string, tenantOf: (id: string) => string | null | undefined): string {
  if (principal.role === 'admin') return text;
  return text.replace(TASK_ID_IN_TEXT, (id) => {
    const tenant = tenantOf(id);
    return tenant !== undefined && tenant !== principal.tenant ? OTHER_TASK : id;
  }).replaceAll(`task ${OTHER_TASK}`, OTHER_TASK);
}

/** An event as the caller may see it: ids of another tenant's tasks in its data (preemptedBy, by) are hidden as in taskView. */
export function eventView<E extends { readonly data: Record<string, unknown> }>(principal: Principal, event: E, tenantOf: (id: string) => string | null | undefined): E {
  if (principal.role === 'admin') return event;
  const json = JSON.stringify(event.data);
  const hidden = hideTaskIds(principal, json, tenantOf);
  return hidden === json ? event : { ...event, data: JSON.parse(hidden) as Record<string, unknown> };
}

const OTHER_TASK = "another tenant's task";

/** Which cached rendering of a list the caller may be given: one for admins, one per tenant. */
export function viewerKey(principal: Principal): string {
  return principal.role === 'admin' ? '*admin' : `tenant:${principal.tenant}`;
}

/**
 * A submission's tenant as asked: an admin may submit for any tenant; a user for its own only
 * (left out, the daemon files it under the caller's tenant).
 */
export function checkSubmitTenant(principal: Principal, asked: string | undefined): void {
  if (principal.role !== 'admin' && asked !== undefined && asked !== principal.tenant) {
    throw new GsError(ErrorCodes.forbidden, `tenant "${principal.tenant}" may not submit for tenant "${shown(asked)}"`);
  }
}

/**
 * A submission's priority as asked, against the most the caller may ask: a user token may not
 * ask more than its `maxPriority` (normal, 500, unless its entry says otherwise), since a higher
 * priority preempts other tenants' tasks. Admins are not limited. `priority` is the parsed value.
 */
/** A submission's priority as the daemon will read it (request.ts); null: not one, the daemon refuses it with its own message. */
export function askedPriority(value: string | number | undefined): number | null {
  if (value === undefined) return PRIORITY_LEVELS.normal;
  const text = String(value).trim().toLowerCase();
  if (text in PRIORITY_LEVELS) return PRIORITY_LEVELS[text as keyof typeof PRIORITY_LEVELS];
  const n = Number(text);
  return text !== '' && Number.isInteger(n) ? n : null;
}

export function checkSubmitPriority(principal: Principal, priority: number | null): void {
  const max = principal.maxPriority;
  if (principal.role === 'admin' || max === undefined || priority === null || priority <= max) return;
  throw new GsError(ErrorCodes.forbidden, `priority ${priority} is more than this token may ask (at most ${max}); a higher priority preempts other tenants' tasks, so it needs an admin token or a token made with a higher --max-priority`);
}

/** The tenant whose events the caller may read (undefined: all of them). A user without a tenant sees none. */
export function eventScope(principal: Principal): string | undefined {
  return principal.role === 'admin' ? undefined : (principal.tenant ?? '');
}

/**
 * Whether the caller may see `event` (live streams; pages are filtered by `eventScope`): an
 * event about no task, or about a task `taskOf` no longer finds (null), is the admin's only.
 */
export function canSeeEvent(principal: Principal, event: { readonly taskId: string | null }, taskOf: (id: string) => Pick<Task, 'tenant'> | null): boolean {
  if (principal.role === 'admin') return true;
  const task = event.taskId === null ? null : taskOf(event.taskId);
  return task !== null && task.tenant === principal.tenant;
}

export function canSeeTenant(principal: Principal, name: string): boolean {
  return principal.role === 'admin' || name === principal.tenant;
}

/** The same 404 as a tenant that does not exist, for one the caller may not see. */
export function visibleTenantName(principal: Principal, name: string): string {
  if (!canSeeTenant(principal, name)) throw new GsError(ErrorCodes.notFound, `no tenant "${name}"`);
  return name;
}

/** GPUs as the caller may see them: another tenant's slice shows that it is there and its size, not whose it is. */
export function visibleGpus(principal: Principal, gpus: GpuWithSlices[]): GpuWithSlices[] {
  if (principal.role === 'admin') return gpus;
  return gpus.map((g) => ({
    ...g,
    slices: g.slices.map((s) => (s.tenant === principal.tenant ? s : { ...s, taskId: null, tenant: null })),
  }));
}

/**
 * A monitor sample as the caller may see it: every GPU (as /v1/gpus shows them), but only the
 * caller's tenant's slices, and the queue's oldest task named only if it is the caller's. An
 * admin's sample is the sample itself (the stream then sends one string to every admin).
 */
export function visibleSample(principal: Principal, sample: MonitorSample, tenantOf: (id: string) => string | null | undefined): MonitorSample {
  if (principal.role === 'admin') return sample;
  const oldest = sample.queue.oldestTask;
  return {
    ...sample,
    slices: sample.slices.filter((s) => s.tenant === principal.tenant),
    queue: oldest !== null && tenantOf(oldest) !== principal.tenant ? { ...sample.queue, oldestTask: null } : sample.queue,
  };
}
