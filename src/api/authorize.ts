/**
 * Who may see and do what, decided at the API edge: pure functions over the caller (a Principal)
 * and the record asked about. The daemon (src/node) does what it is told and records who told it;
 * every route asks here first. An admin (the Unix socket's user, or an admin token) sees and
 * does everything; a `user` token sees its own tenant's tasks, events and tenant, and another
 * tenant's task reads as not there at all (404, not 403: its existence is not disclosed).
 */
import type { GpuWithSlices } from '../contract/gpus.js';
import type { Principal } from '../contract/principal.js';
import type { Task } from '../contract/task.js';
import { ErrorCodes, GsError } from '../domain/index.js';

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

/** The tasks the caller may see (an admin's list as it is). */
export function visibleTasks(principal: Principal, tasks: Task[]): Task[] {
  return principal.role === 'admin' ? tasks : tasks.filter((t) => canSeeTask(principal, t));
}

/**
 * A visible task as the caller may see it: why it waits names other tasks (the head it waits
 * behind, the tasks preempted for it), and one of another tenant reads as `taskId: null`,
 * "another tenant's task" in words, as a slice of theirs on a GPU does. `tenantOf`: a task's
 * tenant by id (undefined: gone, then not the caller's either).
 */
export function taskView(principal: Principal, task: Task, tenantOf: (id: string) => string | null | undefined): Task {
  const w = task.waiting;
  if (principal.role === 'admin' || w === null || (w.kind !== 'behind' && w.kind !== 'preempting')) return task;
  const hidden = (id: string | null): boolean => id !== null && tenantOf(id) !== principal.tenant;
  const hide = (text: string, id: string): string => text.replaceAll(`task ${id}`, OTHER_TASK).replaceAll(id, OTHER_TASK);
  if (w.kind === 'behind') {
    if (w.taskId === null || !hidden(w.taskId)) return task;
    return { ...task, waiting: { ...w, taskId: null, text: hide(w.text, w.taskId) } };
  }
  const others = w.victims.filter((v) => hidden(v.taskId));
  if (others.length === 0) return task;
  const text = others.reduce((t, v) => (v.taskId === null ? t : hide(t, v.taskId)), w.text);
  return { ...task, waiting: { ...w, victims: w.victims.map((v) => (hidden(v.taskId) ? { ...v, taskId: null } : v)), text } };
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
    throw new GsError(ErrorCodes.forbidden, `tenant "${principal.tenant}" may not submit for tenant "${asked}"`);
  }
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
