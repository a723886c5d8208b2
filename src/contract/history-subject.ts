/** Which subject a history series takes; apart from history.ts so that the CLI reads it without loading zod. */
import type { HistorySeries } from './monitor.js';

/** Which subject each series takes: `gpu` (an index), `task` (an id), `tenant` (a name), or none. */
export function historySubjectOf(series: HistorySeries): 'gpu' | 'task' | 'tenant' | null {
  if (series.startsWith('gpu_')) return 'gpu';
  if (series.startsWith('slice_')) return 'task';
  if (series.startsWith('tenant_')) return 'tenant';
  return null;
}
