import { describe, expect, it } from 'vitest';
import type { AlertEvent, HistoryResponse } from '../../contract/monitor.js';
import { renderReport } from './index.js';
import { buildReport, chartLine, gpuSecondsOf, quantile, seriesStats, type ReportInputs, type ReportTask } from './model.js';

const H = 3_600_000;
const FROM = 1_800_000_000_000;
const TO = FROM + 24 * H;
const GIB = 1024 ** 3;

const series = (s: HistoryResponse['series'], values: readonly number[], stepS = 60): HistoryResponse => ({
  series: s, subject: {}, step: stepS, from: FROM, to: TO,
  points: values.map((v, i) => ({ t: FROM + i * stepS * 1000, min: v / 2, mean: v, max: v + 0.05 })),
});

const task = (over: Partial<ReportTask> & Pick<ReportTask, 'id'>): ReportTask => ({
  tenant: 'alice', state: 'exited', command: ['python', 'train.py'], submittedAt: FROM, startedAt: FROM + 60_000, finishedAt: FROM + 2 * H, gpus: [{ index: 0, memoryBytes: 8 * GIB }], peakMemoryBytes: 6 * GIB, suspensions: 0, ...over,
});

const alert = (over: Partial<AlertEvent> & Pick<AlertEvent, 'id'>): AlertEvent => ({
  rule: 'gpu_memory', severity: 'warning', state: 'firing', subject: { gpu: 0 }, value: 0.9, threshold: 0.85, startedAt: FROM + H, resolvedAt: null, summary: 'GPU 0 memory at 90% (threshold 85%) for 2m', silenced: false, ...over,
});

function inputs(over: Partial<ReportInputs> = {}): ReportInputs {
  return {
    from: FROM, to: TO, generatedAt: TO, source: '/run/gpushare.sock (SIMULATED GPUs)',
    gpus: [{ index: 1, uuid: 'GPU-b', model: 'H100', memoryTotalBytes: 80 * GIB }, { index: 0, uuid: 'GPU-a', model: 'H100', memoryTotalBytes: 80 * GIB }],
    gpuHistory: new Map([[0, { utilization: series('gpu_utilization', Array.from({ length: 100 }, (_, i) => i / 100)), memory: series('gpu_memory_used_bytes', [GIB, 2 * GIB]) }]]),
    tenantHistory: new Map([['alice', { memory: series('tenant_memory_used_bytes', [4 * GIB, 6 * GIB]), compute: null }]]),
    queueHistory: series('queue_length', [0, 2, 1]),
    tasks: [
      task({ id: 'aaaaaaaaaaaa' }),
      task({ id: 'bbbbbbbbbbbb', tenant: 'bob', startedAt: FROM + 600_000, finishedAt: null, state: 'running', gpus: [{ index: 0, memoryBytes: GIB }, { index: 1, memoryBytes: GIB }], suspensions: 1 }),
      task({ id: 'cccccccccccc', tenant: 'bob', submittedAt: TO - 300_000, startedAt: null, finishedAt: null, state: 'queued', gpus: null }),
      // Ended before the window: not in it.
      task({ id: 'dddddddddddd', submittedAt: FROM - 5 * H, startedAt: FROM - 5 * H, finishedAt: FROM - H }),
    ],
    events: [
      { at: FROM + 3 * H, type: 'task.suspended', taskId: 'bbbbbbbbbbbb', data: { ms: 200, gpuBytes: GIB } },
      { at: FROM + 4 * H, type: 'task.resumed', taskId: 'bbbbbbbbbbbb', data: { ms: 300, gpuBytes: GIB } },
      { at: FROM + 5 * H, type: 'task.resume-failed', taskId: 'bbbbbbbbbbbb', data: {} },
    ],
    alerts: [alert({ id: 'a1' }), alert({ id: 'a1', state: 'resolved', resolvedAt: FROM + 2 * H }), alert({ id: 'a2', severity: 'critical', rule: 'xid', summary: 'GPU 1 XID 79 <fallen off the bus>' })],
    ...over,
  };
}

describe('report model', () => {
  it('takes quantiles by nearest rank', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile(Array.from({ length: 100 }, (_, i) => i + 1), 0.95)).toBe(95);
    expect(quantile([7], 0.95)).toBe(7);
  });

  it('counts GPU-time inside the window only, times the GPUs held', () => {
    expect(gpuSecondsOf(task({ id: 'x', startedAt: FROM - H, finishedAt: FROM + H }), FROM, TO)).toBe(3600);
    expect(gpuSecondsOf(task({ id: 'x', gpus: [{ index: 0, memoryBytes: 1 }, { index: 1, memoryBytes: 1 }], startedAt: TO - H, finishedAt: null }), FROM, TO)).toBe(7200);
    expect(gpuSecondsOf(task({ id: 'x', startedAt: null }), FROM, TO)).toBe(0);
  });

  it('summarizes a series as mean, p95 and max, and thins it to the chart width', () => {
    const s = seriesStats(series('gpu_utilization', Array.from({ length: 100 }, (_, i) => i / 100)).points);
    expect(s).toMatchObject({ p95: 0.94, max: 0.99 + 0.05, points: 100 });
    expect(s?.mean).toBeCloseTo(0.495, 9);
    expect(seriesStats([])).toBeNull();
    const line = chartLine(series('gpu_utilization', Array.from({ length: 1000 }, () => 0.5)).points, 240);
    expect(line.length).toBeLessThanOrEqual(240);
    expect(line.every(([, mean, max]) => mean === 0.5 && max === 0.55)).toBe(true);
  });

  it('builds per-GPU, per-tenant, top-task, wait, suspension and alert figures from the API answers', () => {
    const r = buildReport(inputs());
    expect(r.gpus.map((g) => g.index)).toEqual([0, 1]);
    expect(r.gpus[0]?.utilization?.p95).toBe(0.94);
    expect(r.gpus[1]?.utilization).toBeNull();
    expect(r.tasksInWindow).toBe(3);
    // bob: 2 GPUs from 10 min in to the end; alice: 1 GPU for 1 h 59 m.
    expect(r.tenants.map((t) => [t.tenant, t.tasks, t.gpuSeconds])).toEqual([['bob', 2, 2 * (24 * 3600 - 600)], ['alice', 1, 7140]]);
    expect(r.tenants[1]?.memoryUsedBytes?.max).toBeCloseTo(6 * GIB + 0.05, 0);
    expect(r.topTasks.map((t) => t.id)).toEqual(['bbbbbbbbbbbb', 'aaaaaaaaaaaa', 'cccccccccccc']);
    expect(r.topTasks[1]).toMatchObject({ reservedMemoryBytes: 8 * GIB, peakMemoryBytes: 6 * GIB, waitedSeconds: 60 });
    expect(r.waits).toMatchObject({ started: 2, meanSeconds: 330, p50Seconds: 60, p95Seconds: 600, maxSeconds: 600, stillQueued: 1, longestQueuedSeconds: 300 });
    expect(r.waits.queueLength?.max).toBeCloseTo(2.05, 9);
    expect(r.suspensions).toEqual({ suspended: 1, resumed: 1, failed: 1, meanSuspendMs: 200, meanResumeMs: 300, gpuBytesMoved: 2 * GIB });
    // a1 fired and resolved: one alert, resolved; a2 still firing.
    expect(r.alerts).toMatchObject({ available: true, total: 2, firingAtEnd: 1, bySeverity: { info: 0, warning: 1, critical: 1 } });
    expect(r.alerts.list.find((a) => a.id === 'a1')?.state).toBe('resolved');
  });

  it('says the daemon keeps no alerts when GET /v1/alerts was not there', () => {
    const r = buildReport(inputs({ alerts: null }));
    expect(r.alerts).toMatchObject({ available: false, total: 0 });
    expect(renderReport(r, 'md')).toContain('keeps no alerts');
  });
});

describe('report renderers', () => {
  const r = buildReport(inputs({ tasks: [...inputs().tasks, task({ id: 'eeeeeeeeeeee', command: ['sh', '-c', 'echo "<script>alert(1)</script>" | tee x'] })] }));

  it('HTML: one file, charts as inline SVG, no script and nothing fetched, text escaped', () => {
    const html = renderReport(r, 'html');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).not.toMatch(/<script|<link|<img|src=|href=|@import|url\(/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('GPU 1 XID 79 &lt;fallen off the bus&gt;');
    // Two charts per GPU, and the tenants' bars.
    expect(html.match(/<svg /g)).toHaveLength(2 * 2 + 1);
    expect(html).toContain('no data recorded');
    expect(html).toMatch(/<polyline points="[\d., ]+" class="mean"\/>/);
  });

  it('Markdown: a table per section, pipes in cells escaped', () => {
    const md = renderReport(r, 'md');
    for (const h of ['## GPUs', '## Tenants', '## Top tasks', '## Waits', '## Suspensions', '## Alerts']) expect(md).toContain(h);
    expect(md).toContain('| 0 | H100 | 49.5% | 94.0% | 104.0% |');
    expect(md).toContain('\\| tee x');
    expect(md).toContain('2 alerts (1 critical, 1 warning, 0 info); 1 still firing at the end.');
  });

  it('JSON: the model as it is', () => {
    expect(JSON.parse(renderReport(r, 'json'))).toEqual(JSON.parse(JSON.stringify(r)));
  });
});
