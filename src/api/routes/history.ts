/**
 * /v1/history: one series over a range, from the daemon's history store. GPU series and the
 * queue's length are fleet-wide, as /v1/gpus shows every GPU to every caller; a task's series
 * is seen by whoever may see the task (its tenant, or an admin), and a tenant's by that tenant
 * and admins: to anyone else it reads as not there (404), as the task or tenant itself does.
 */
import { historyRange, HistoryQuerySchema, HistoryResponseSchema, type HistoryQuery } from '../../contract/history.js';
import type { Principal } from '../../contract/principal.js';
import { shown } from '../../contract/shown.js';
import { ErrorCodes, GsError, isGsError } from '../../domain/index.js';
import { canSeeTask, taskScope, visibleTask, visibleTenantName } from '../authorize.js';
import { errors, type Api, type RouteContext } from './shared.js';

export function registerHistoryRoutes(api: Api, { daemon, history }: RouteContext): void {
  /** The task a query names, as a full id, if the caller may see it; a removed task by the tenant its history was filed under. */
  const taskId = (asked: string, principal: Principal): string => {
    try {
      return visibleTask(principal, daemon.get(asked, taskScope(principal)), asked).id;
    } catch (err) {
      if (!isGsError(err) || err.code !== ErrorCodes.notFound) throw err;
    }
    const tenant = history?.taskTenant(asked);
    if (tenant === undefined || !canSeeTask(principal, { tenant })) throw new GsError(ErrorCodes.notFound, `no task "${shown(asked)}" (nor history of one)`);
    return asked;
  };

  const subjectOf = (q: HistoryQuery, principal: Principal): { gpu?: number; task?: string; tenant?: string } => {
    if (q.gpu !== undefined) return { gpu: q.gpu };
    if (q.task !== undefined) return { task: taskId(q.task, principal) };
    if (q.tenant !== undefined) return { tenant: visibleTenantName(principal, q.tenant) };
    return {};
  };

  api.get(
    '/v1/history',
    { schema: { summary: 'One series over a range: raw for the last hour, then per-minute (7 days) and per-hour (90 days) min, mean and max; a coarser step is aggregated on read', querystring: HistoryQuerySchema, response: { 200: HistoryResponseSchema, ...errors } } },
    async (req) => {
      const now = Date.now();
      const { from, to, stepMs } = historyRange(req.query, now);
      const subject = subjectOf(req.query, req.principal);
      if (history === null || history === undefined) throw new GsError(ErrorCodes.notFound, 'this daemon keeps no history');
      const answer = history.range({ series: req.query.series, subject, from, to, stepMs, now });
      return { series: req.query.series, subject, step: answer.stepMs / 1000, from, to, points: [...answer.points] };
    },
  );
}
