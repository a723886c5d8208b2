import { describe, expect, it } from 'vitest';
import type { GpuSample, MonitorSample, SliceSample } from '../../contract/monitor.js';
import { SampleHub } from '../hub.js';
import { MetricsExporter, wantsOpenMetrics, type MetricsCompatSet } from './exporter.js';
import { parseExposition, value } from '../../../test/helpers/exposition.js';

const gpuSample = (index: number, over: Partial<GpuSample> = {}): GpuSample => ({
  index, uuid: `GPU-${index}`, model: 'H100-80GB', health: 'ok', cordoned: false,
  memoryTotalBytes: 80 * 2 ** 30, memoryUsedBytes: 2 ** 30, memoryFreeBytes: 79 * 2 ** 30 - 5, memoryReservedBytes: 5,
  utilizationGpu: 0.37, utilizationMemory: 0.12, clockSmHz: 1_755_000_000, clockMemoryHz: 2_619_000_000,
  temperatureCelsius: 41, powerWatts: 171.25, powerLimitWatts: 700, energyJoules: 5000.5,
  throttleReasons: ['sw_power_cap'], eccCorrectedErrors: 3, eccUncorrectedErrors: 0, xidErrors: 1, lastXid: 79, pcieReplays: 4,
  ...over,
});

const slice = (task: string, gpu: number, over: Partial<SliceSample> = {}): SliceSample => ({
  task, tenant: 'ml', gpu, uuid: `GPU-${gpu}`, state: 'running', memoryLimitBytes: 8 * 2 ** 30, memoryUsedBytes: 4_048_576,
  memoryByKind: { context: 3_000_000, alloc: 1_048_576, vmm: 0, array: 0, pool: 0, host: 999, graph: 0 },
  computeLimit: 0.4, computeShare: 0.35, busySeconds: 2.5, throttledSeconds: 0.5, kernelLaunches: 12, kubernetes: null,
  ...over,
});

const sample = (over: Partial<MonitorSample> = {}): MonitorSample => ({
  at: 1_700_000_000_000, hostname: 'node-1',
  gpus: [gpuSample(0), gpuSample(1, { energyJoules: null, eccCorrectedErrors: null, eccUncorrectedErrors: null, throttleReasons: null, xidErrors: null, lastXid: null })],
  slices: [slice('t1', 0), slice('t1', 1, { memoryUsedBytes: 7 }), slice('t2', 0, { tenant: 'cv', state: 'suspended', computeLimit: null, computeShare: null, kubernetes: { namespace: 'ns', pod: 'p', container: 'c' } })],
  queue: { queued: 2, oldestTask: 'q1', oldestWaitSeconds: 9.5 },
  ...over,
});

function exporter(compat: readonly MetricsCompatSet[] = []) {
  const hub = new SampleHub();
  const submitted = new Map([['t1', 1_000]]);
  const m = new MetricsExporter({
    samples: hub,
    tenants: () => [{ name: 'ml', usage: { gpus: 2, memoryBytes: 16 * 2 ** 30, computeMilli: 800 }, quota: { gpus: 4, memoryBytes: null, computeMilli: 2000 } }],
    submittedAt: (id) => submitted.get(id) ?? null,
    compat,
  });
  return { hub, m };
}

const scrape = async (m: MetricsExporter, accept?: string) => parseExposition((await m.render(accept)).body);

describe('the exporter', () => {
  it("gives each GPU's figures in base units with gpu, uuid, model and hostname, leaving out what the backend could not read", async () => {
    const { hub, m } = exporter();
    hub.publish(sample());
    const s = await scrape(m);
    const g0 = { gpu: '0', uuid: 'GPU-0', model: 'H100-80GB', hostname: 'node-1' };
    expect(value(s, 'gpushare_gpu_utilization_ratio', g0)).toBe(0.37);
    expect(value(s, 'gpushare_gpu_sm_clock_hertz', g0)).toBe(1_755_000_000);
    expect(value(s, 'gpushare_gpu_memory_reserved_bytes', g0)).toBe(5);
    expect(value(s, 'gpushare_gpu_energy_joules_total', g0)).toBe(5000.5);
    expect(value(s, 'gpushare_gpu_ecc_errors_total', { ...g0, type: 'corrected' })).toBe(3);
    expect(value(s, 'gpushare_gpu_xid_errors_total', g0)).toBe(1);
    expect(value(s, 'gpushare_gpu_last_xid', g0)).toBe(79);
    expect(value(s, 'gpushare_gpu_pcie_replays_total', g0)).toBe(4);
    expect(value(s, 'gpushare_gpu_throttle_reason', { ...g0, reason: 'sw_power_cap' })).toBe(1);
    expect(value(s, 'gpushare_gpu_throttle_reason', { ...g0, reason: 'hw_slowdown' })).toBe(0);
    expect(value(s, 'gpushare_gpu_healthy', g0)).toBe(1);
    const g1 = { ...g0, gpu: '1', uuid: 'GPU-1' };
    expect(value(s, 'gpushare_gpu_utilization_ratio', g1)).toBe(0.37);
    for (const absent of ['gpushare_gpu_energy_joules_total', 'gpushare_gpu_xid_errors_total', 'gpushare_gpu_last_xid', 'gpushare_gpu_throttle_reason', 'gpushare_gpu_ecc_errors_total']) {
      expect(s.filter((x) => x.name === absent && x.labels['gpu'] === '1')).toEqual([]);
    }
    expect(value(s, 'gpushare_queue_length', {})).toBe(2);
    // Watched, none seen yet: 0, as dcgm-exporter says it.
    hub.publish(sample({ gpus: [gpuSample(0, { xidErrors: 0, lastXid: null })] }));
    expect(value(await scrape(m), 'gpushare_gpu_last_xid', g0)).toBe(0);
    expect(value(s, 'gpushare_queue_oldest_wait_seconds', {})).toBe(9.5);
    expect(value(s, 'gpushare_sample_timestamp_seconds', { hostname: 'node-1' })).toBe(1_700_000_000);
  });

  it('gives each slice its memory (by kind, to the byte), limits, share, counters and state, with Kubernetes labels when set', async () => {
    const { hub, m } = exporter();
    hub.publish(sample());
    const s = await scrape(m);
    const t1 = { gpu: '0', uuid: 'GPU-0', hostname: 'node-1', task: 't1', tenant: 'ml', namespace: '', pod: '', container: '' };
    expect(value(s, 'gpushare_slice_memory_used_bytes', t1)).toBe(4_048_576);
    expect(value(s, 'gpushare_slice_memory_used_bytes', { ...t1, gpu: '1', uuid: 'GPU-1' })).toBe(7);
    expect(value(s, 'gpushare_slice_memory_bytes', { ...t1, kind: 'context' })).toBe(3_000_000);
    expect(value(s, 'gpushare_slice_memory_bytes', { ...t1, kind: 'host' })).toBe(999);
    expect(value(s, 'gpushare_slice_memory_limit_bytes', t1)).toBe(8 * 2 ** 30);
    expect(value(s, 'gpushare_slice_compute_limit_ratio', t1)).toBe(0.4);
    expect(value(s, 'gpushare_slice_compute_share_ratio', t1)).toBe(0.35);
    expect(value(s, 'gpushare_slice_throttled_seconds_total', t1)).toBe(0.5);
    expect(value(s, 'gpushare_slice_busy_seconds_total', t1)).toBe(2.5);
    expect(value(s, 'gpushare_slice_kernel_launches_total', t1)).toBe(12);
    expect(value(s, 'gpushare_slice_state', { ...t1, state: 'running' })).toBe(1);
    const t2 = { ...t1, task: 't2', tenant: 'cv', namespace: 'ns', pod: 'p', container: 'c' };
    expect(value(s, 'gpushare_slice_state', { ...t2, state: 'suspended' })).toBe(1);
    expect(value(s, 'gpushare_slice_state', { ...t2, state: 'running' })).toBe(0);
    expect(s.filter((x) => x.name === 'gpushare_slice_compute_share_ratio' && x.labels['task'] === 't2')).toEqual([]);
  });

  it('drops GPUs and slices the next sample no longer has, and never shows a sample older than the latest', async () => {
    const { hub, m } = exporter();
    hub.publish(sample());
    await scrape(m);
    hub.publish(sample({ at: 1_700_000_001_000, slices: [slice('t1', 0, { memoryUsedBytes: 42 })] }));
    const s = await scrape(m);
    expect(s.filter((x) => x.name === 'gpushare_slice_memory_used_bytes').map((x) => [x.labels['task'], x.value])).toEqual([['t1', 42]]);
    expect(value(s, 'gpushare_sample_timestamp_seconds', { hostname: 'node-1' })).toBe(1_700_000_001);
  });

  it("reports the tenants' usage against their quotas in base units, a quota without a limit left out", async () => {
    const { m } = exporter();
    const s = await scrape(m);
    expect(value(s, 'gpushare_tenant_usage', { tenant: 'ml', resource: 'memory_bytes' })).toBe(16 * 2 ** 30);
    expect(value(s, 'gpushare_tenant_usage', { tenant: 'ml', resource: 'compute_gpus' })).toBe(0.8);
    expect(value(s, 'gpushare_tenant_quota', { tenant: 'ml', resource: 'compute_gpus' })).toBe(2);
    expect(value(s, 'gpushare_tenant_quota', { tenant: 'ml', resource: 'gpus' })).toBe(4);
    expect(s.filter((x) => x.name === 'gpushare_tenant_quota' && x.labels['resource'] === 'memory_bytes')).toEqual([]);
  });

  it('observes queue waits, scheduling passes, suspensions and API requests where they happen', async () => {
    const { m } = exporter();
    m.taskEvent({ at: 3_500, type: 'task.started', taskId: 't1', data: {} });
    m.taskEvent({ at: 9_000, type: 'task.started', taskId: 't1', data: { adopted: true } });
    m.taskEvent({ at: 9_000, type: 'task.started', taskId: 'gone', data: {} });
    m.taskEvent({ at: 9_000, type: 'task.suspended', taskId: 't1', data: { ms: 250, gpuBytes: 1000 } });
    m.taskEvent({ at: 9_000, type: 'task.resumed', taskId: 't1', data: { ms: 400, gpuBytes: 1000 } });
    m.queuePass({ start: 2, resume: 0, wait: 3, preempt: 1 }, 0.0004);
    m.observeRequest('/v1/tasks/:id', 'GET', 404, 0.002);
    m.observeRequest('/v1/tasks/:id', 'GET', 200, 0.001);
    const s = await scrape(m);
    expect(value(s, 'gpushare_queue_wait_seconds_count', {})).toBe(1);
    expect(value(s, 'gpushare_queue_wait_seconds_sum', {})).toBe(2.5);
    expect(value(s, 'gpushare_suspend_seconds_sum', {})).toBe(0.25);
    expect(value(s, 'gpushare_resume_seconds_sum', {})).toBe(0.4);
    expect(value(s, 'gpushare_suspend_bytes_total', {})).toBe(1000);
    expect(value(s, 'gpushare_scheduling_decisions_total', { outcome: 'start' })).toBe(2);
    expect(value(s, 'gpushare_scheduling_decisions_total', { outcome: 'resume' })).toBe(0);
    expect(value(s, 'gpushare_scheduling_decisions_total', { outcome: 'wait' })).toBe(3);
    expect(value(s, 'gpushare_scheduling_pass_seconds_count', {})).toBe(1);
    expect(value(s, 'gpushare_api_request_seconds_count', { route: '/v1/tasks/:id', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(value(s, 'gpushare_api_request_seconds_bucket', { route: '/v1/tasks/:id', method: 'GET', status_class: '2xx', le: '0.001' })).toBe(1);
  });

  it("counts overcommit's swaps by direction and reason, and its waits by kind", async () => {
    const { m } = exporter();
    m.taskEvent({ at: 1, type: 'task.swapped-out', taskId: 'a', data: { reason: 'turn', for: 'b', swappedBytes: 10, swapSeconds: 0.98 } });
    m.taskEvent({ at: 2, type: 'task.swapped-out', taskId: 'b', data: { reason: 'idle', swapSeconds: 0.5 } });
    m.taskEvent({ at: 3, type: 'task.swapped-out', taskId: 'c', data: { reason: 'x'.repeat(400), swapSeconds: 'nan' } });
    m.taskEvent({ at: 4, type: 'task.swapped-in', taskId: 'b', data: { waitedMs: 30_100, swapSeconds: 0.9 } });
    m.taskEvent({ at: 4, type: 'task.swapped-in', taskId: 'a', data: { waitedMs: 100, swapSeconds: 1.0, handover: { from: ['b'], outSeconds: 0.95, inSeconds: 1.0, waitSeconds: 0.2, wallSeconds: 1.07 } } });
    m.taskEvent({ at: 5, type: 'task.room-made', taskId: 'b', data: { bytes: 1, waitedMs: 1500 } });
    m.taskEvent({ at: 6, type: 'task.wants-room-refused', taskId: 'd', data: { bytes: 1, waitedMs: 60_000 } });
    const s = await scrape(m);
    expect(value(s, 'gpushare_overcommit_swaps_total', { direction: 'out', reason: 'turn' })).toBe(1);
    expect(value(s, 'gpushare_overcommit_swaps_total', { direction: 'out', reason: 'idle' })).toBe(1);
    // a reason the daemon never writes is not turned into a label value
    expect(value(s, 'gpushare_overcommit_swaps_total', { direction: 'out', reason: 'unknown' })).toBe(1);
    expect(value(s, 'gpushare_overcommit_swaps_total', { direction: 'in', reason: 'in' })).toBe(2);
    // an overlapped hand-over's wall time (the in's own seconds stay in swap_seconds)
    expect(value(s, 'gpushare_overcommit_handover_seconds_sum', {})).toBeCloseTo(1.07, 6);
    expect(value(s, 'gpushare_overcommit_handover_seconds_count', {})).toBe(1);
    expect(value(s, 'gpushare_overcommit_swap_seconds_count', { direction: 'in' })).toBe(2);
    expect(value(s, 'gpushare_overcommit_swap_seconds_sum', { direction: 'out' })).toBeCloseTo(1.48, 6);
    expect(value(s, 'gpushare_overcommit_swap_seconds_count', { direction: 'out' })).toBe(2);
    expect(value(s, 'gpushare_overcommit_wait_seconds_sum', { kind: 'in' })).toBeCloseTo(30.2, 6);
    expect(value(s, 'gpushare_overcommit_wait_seconds_sum', { kind: 'room' })).toBeCloseTo(1.5, 6);
    expect(value(s, 'gpushare_overcommit_room_refused_total', {})).toBe(1);
  });

  it('speaks OpenMetrics when the Accept header asks for it, and the Prometheus text format otherwise', async () => {
    const { hub, m } = exporter();
    hub.publish(sample());
    const text = await m.render(undefined);
    expect(text.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(text.body).toContain('# TYPE gpushare_slice_kernel_launches_total counter');
    const accept = 'application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1';
    const om = await m.render(accept);
    expect(om.contentType).toBe('application/openmetrics-text; version=1.0.0; charset=utf-8');
    expect(om.body.endsWith('# EOF\n')).toBe(true);
    expect(om.body).toContain('# TYPE gpushare_slice_kernel_launches counter');
    expect(om.body).toMatch(/^gpushare_slice_kernel_launches_total\{.*task="t1".*\} 12$/m);
    // The Prometheus registry is untouched by the OpenMetrics one.
    expect((await m.render('text/plain')).body).toContain('# TYPE gpushare_slice_kernel_launches_total counter');
    expect(wantsOpenMetrics('text/plain;version=0.0.4')).toBe(false);
  });

  it('adds no other name set unless asked; dcgm and hami sets in their own names, labels and units', async () => {
    const plain = exporter();
    plain.hub.publish(sample());
    expect((await scrape(plain.m)).filter((x) => !x.name.startsWith('gpushare_'))).toEqual([]);

    const { hub, m } = exporter(['dcgm', 'hami']);
    hub.publish(sample());
    const s = await scrape(m);
    const d0 = { gpu: '0', UUID: 'GPU-0', device: 'nvidia0', modelName: 'H100-80GB', Hostname: 'node-1' };
    expect(value(s, 'DCGM_FI_DEV_SM_CLOCK', d0)).toBe(1755);
    expect(value(s, 'DCGM_FI_DEV_GPU_UTIL', d0)).toBe(37);
    expect(value(s, 'DCGM_FI_DEV_FB_USED', d0)).toBe(1024);
    expect(value(s, 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION', d0)).toBe(5_000_500);
    expect(value(s, 'DCGM_FI_DEV_XID_ERRORS', d0)).toBe(79);
    expect(value(s, 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS', d0)).toBe(4);
    expect(value(s, 'DCGM_FI_DEV_PCIE_REPLAY_COUNTER', d0)).toBe(4);
    expect(value(s, 'hami_host_gpu_utilization_ratio', { device_index: '0', device_type: 'NVIDIA-H100-80GB', device_uuid: 'GPU-0', zone: 'vGPU' })).toBe(37);
    const h = { container: 't1', device_uuid: 'GPU-1', namespace: 'ml', pod: 't1', vdevice_index: '1', zone: 'vGPU' };
    expect(value(s, 'hami_vgpu_memory_used_bytes', h)).toBe(7);
    expect(value(s, 'hami_vgpu_memory_limit_bytes', h)).toBe(8 * 2 ** 30);
    expect(value(s, 'hami_container_device_utilization_ratio', { ...h, device_uuid: 'GPU-0', vdevice_index: '0' })).toBe(35);
    expect(value(s, 'hami_vgpu_memory_context_bytes', { container: 'c', device_uuid: 'GPU-0', namespace: 'ns', pod: 'p', vdevice_index: '0', zone: 'vGPU' })).toBe(3_000_000);
  });
});
