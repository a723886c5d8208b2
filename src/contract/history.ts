/**
 * GET /v1/history's query and answer (the types are in monitor.ts): which series, about whom,
 * over which range and at what step. The server validates with these schemas and resolves the
 * range with `historyRange`; the CLI, the dashboard and `gpushare report` build queries the same way.
 */
import { z } from 'zod';
import { ErrorCodes, GsError } from '../domain/index.js';
import { parseDuration } from './duration.js';
import { historySubjectOf } from './history-subject.js';
import { HISTORY_SERIES, type HistorySeries } from './monitor.js';
import { shown } from './shown.js';

export { historySubjectOf } from './history-subject.js';

const SERIES_HELP = `series are ${HISTORY_SERIES.join(', ')}; gpu_* take gpu=<index>, slice_* task=<id>, tenant_* tenant=<name>, queue_length none`;

/** A time: a duration back from now (`1h`, `30m`, `7d`) or a Unix time in milliseconds. */
const TimeParam = z
  .string()
  .max(20)
  .refine((v) => /^\d{10,15}$/.test(v) || parseDuration(v) !== null, 'is neither a duration back from now (90s, 15m, 1h, 7d, 2w) nor a Unix time in milliseconds');

/** A step: a duration (`5m`) or a number of seconds. */
const StepParam = z
  .string()
  .max(20)
  .refine((v) => /^\d{1,9}$/.test(v) || parseDuration(v) !== null, 'is neither a duration (10s, 5m, 1h) nor a number of seconds');

export const HistoryQuerySchema = z
  .strictObject({
    series: z.enum(HISTORY_SERIES, { error: () => `is not a history series; ${SERIES_HELP}` }).describe(`the series; ${SERIES_HELP}`),
    gpu: z.coerce.number().int().min(0).max(1023).optional().describe('a GPU index, for gpu_* series'),
    task: z.string().min(1).max(64).optional().describe('a task id (or its unique prefix), for slice_* series'),
    tenant: z.string().min(1).max(64).optional().describe('a tenant, for tenant_* series'),
    since: TimeParam.optional().describe('start: a duration back from now (default 1h) or Unix ms'),
    until: TimeParam.optional().describe('end: a duration back from now or Unix ms (default now)'),
    step: StepParam.optional().describe('seconds each point covers, coarser than stored: aggregated on read (default: the finest stored for the range)'),
  })
  .superRefine((q, ctx) => {
    const wants = historySubjectOf(q.series);
    const given = (['gpu', 'task', 'tenant'] as const).filter((k) => q[k] !== undefined);
    if (wants === null ? given.length > 0 : given.length !== 1 || given[0] !== wants) {
      const asked = wants === null ? 'no subject' : `${wants}=<${wants === 'gpu' ? 'index' : wants === 'task' ? 'id' : 'name'}>`;
      ctx.addIssue({ code: 'custom', path: [wants ?? given[0] ?? 'series'], message: `series ${q.series} takes ${asked}${given.length > 0 ? `, not ${given.join(' and ')}` : ''}; ${SERIES_HELP}` });
    }
  });
export type HistoryQuery = z.infer<typeof HistoryQuerySchema>;

export const HistoryPointSchema = z.object({ t: z.number(), min: z.number(), mean: z.number(), max: z.number() });

export const HistoryResponseSchema = z
  .object({
    series: z.enum(HISTORY_SERIES),
    subject: z.object({ gpu: z.number().optional(), task: z.string().optional(), tenant: z.string().optional() }),
    step: z.number().describe('seconds each point covers'),
    from: z.number(),
    to: z.number(),
    points: z.array(HistoryPointSchema),
  })
  .meta({ id: 'History' });

/** A TimeParam as Unix ms, `now` being now. */
function timeOf(value: string, now: number): number {
  return /^\d{10,15}$/.test(value) ? Number(value) : now - (parseDuration(value) as number);
}

/** The query's range and step in milliseconds; GS_ERR_INVALID_ARGUMENT when it ends before it starts. */
export function historyRange(q: Pick<HistoryQuery, 'since' | 'until' | 'step'>, now: number): { readonly from: number; readonly to: number; readonly stepMs: number } {
  const from = timeOf(q.since ?? '1h', now);
  const to = q.until === undefined ? now : timeOf(q.until, now);
  if (to <= from) throw new GsError(ErrorCodes.invalidArgument, `the range is empty: until (${shown(q.until ?? 'now')}) is not after since (${shown(q.since ?? '1h')})`);
  const stepMs = q.step === undefined ? 0 : /^\d+$/.test(q.step) ? Number(q.step) * 1000 : (parseDuration(q.step) as number);
  return { from, to, stepMs };
}

/** Who a range is about, as the query names it. */
export interface HistorySubject {
  readonly gpu?: number;
  readonly task?: string;
  readonly tenant?: string;
}

/** What the API reads history through (the daemon's history store; a test's stand-in). */
export interface HistorySource {
  /** Points of one series over [from, to); `stepMs` 0 for the finest stored. The answer's step is what each point covers. */
  range(q: { readonly series: HistorySeries; readonly subject: HistorySubject; readonly from: number; readonly to: number; readonly stepMs: number; readonly now: number }): { readonly stepMs: number; readonly points: readonly { t: number; min: number; mean: number; max: number }[] };
  /** The tenant a task's history was filed under; undefined when none was recorded for it. */
  taskTenant(task: string): string | null | undefined;
}
