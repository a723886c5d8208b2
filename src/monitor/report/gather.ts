/**
 * What a report needs, asked of the daemon's API only (so a report can be made from anywhere the
 * API answers): GPUs, history per GPU, tenant and the queue, the task list, events and alerts.
 * `api.get` is the caller's HTTP client; it answers null for a 404 (a daemon without
 * GET /v1/alerts yet: no alerts recorded).
 */
import type { AlertEvent, HistoryResponse, HistorySeries } from '../../contract/monitor.js';
import type { ReportEvent, ReportInputs, ReportTask } from './model.js';

export interface ReportApi {
  /** The JSON body of a GET; null when the daemon answers 404. Other errors throw. */
  get<T>(path: string): Promise<T | null>;
  /** Every task of the list query (all pages). */
  tasks(query: string): Promise<readonly ReportTask[]>;
}

/** Events are asked in pages of this many (the API's largest). */
const EVENT_PAGE = 10_000;

export async function gatherReportInputs(api: ReportApi, window: { readonly from: number; readonly to: number; readonly now: number }, source: string): Promise<ReportInputs> {
  const { from, to } = window;
  const range = `since=${from}&until=${to}`;
  const history = (series: HistorySeries, subject: string): Promise<HistoryResponse | null> => api.get<HistoryResponse>(`/v1/history?series=${series}${subject === '' ? '' : `&${subject}`}&${range}`);
  const gpusBody = await api.get<{ description: string; gpus: { index: number; uuid: string; model: string; memoryTotalBytes: number }[] }>('/v1/gpus');
  const gpus = (gpusBody?.gpus ?? []).map((g) => ({ index: g.index, uuid: g.uuid, model: g.model, memoryTotalBytes: g.memoryTotalBytes }));
  const gpuHistory = new Map(await Promise.all(gpus.map(async (g) => [g.index, { utilization: await history('gpu_utilization', `gpu=${g.index}`), memory: await history('gpu_memory_used_bytes', `gpu=${g.index}`) }] as const)));
  const tasks = (await api.tasks('all=1')).filter((t) => t.submittedAt < to && (t.finishedAt === null || t.finishedAt >= from));
  const tenantsBody = (await api.get<{ name: string }[]>('/v1/tenants')) ?? [];
  const tenantNames = [...new Set([...tenantsBody.map((t) => t.name), ...tasks.flatMap((t) => (t.tenant === null ? [] : [t.tenant]))])].sort();
  const tenantHistory = new Map(await Promise.all(tenantNames.map(async (name) => {
    const q = `tenant=${encodeURIComponent(name)}`;
    return [name, { memory: await orNull(history('tenant_memory_used_bytes', q)), compute: await orNull(history('tenant_compute_share', q)) }] as const;
  })));
  const queueHistory = await history('queue_length', '');
  const events: ReportEvent[] = [];
  for (let since = 0; ; ) {
    const page = (await api.get<(ReportEvent & { readonly seq: number })[]>(`/v1/events?since=${since}&limit=${EVENT_PAGE}`)) ?? [];
    for (const e of page) if (e.at >= from && e.at < to) events.push(e);
    if (page.length < EVENT_PAGE) break;
    since = page.at(-1)?.seq ?? since;
  }
  // Every alert of the window, resolved ones too: a report is usually made after the fact, when what fired has resolved.
  const alertsBody = await api.get<{ alerts: AlertEvent[] }>(`/v1/alerts?state=all&since=${from}`);
  return { from, to, generatedAt: window.now, source: `${source}${gpusBody ? ` (${gpusBody.description})` : ''}`, gpus, gpuHistory, tenantHistory, queueHistory, tasks, events, alerts: alertsBody === null ? null : alertsBody.alerts };
}

/** A tenant's history a user token may not read (another tenant's, listed because its tasks are): left out rather than failing the report. */
async function orNull<T>(p: Promise<T | null>): Promise<T | null> {
  try {
    return await p;
  } catch {
    return null;
  }
}
