/** One GPU: its figures, live charts, and each slice's memory and compute, limit against use. */
import { useEffect } from 'preact/hooks';
import type { SliceSample } from '../../../src/contract/monitor';
import { BYTE_STEPS, Chart } from '../chart';
import { bytes, milli, percent, unit } from '../format';
import type { Live, LiveState } from '../live';
import { Meter, Section, TaskLink, Table } from '../widgets';
import { gpuSampleOf, HealthBadges } from './fleet';

export function GpuView({ index, state, live }: { index: number; state: LiveState; live: Live }) {
  useEffect(() => {
    void live.backfillGpu(index);
  }, [index]);
  const gpu = state.gpus?.gpus.find((g) => g.index === index);
  if (state.gpus !== null && gpu === undefined) return <p class="error">No GPU {index} on this daemon.</p>;
  if (gpu === undefined) return <p class="muted">Loading…</p>;
  const sample = gpuSampleOf(state.sample, index);
  const sliceSamples = new Map<string, SliceSample>((state.sample?.slices ?? []).filter((s) => s.gpu === index).map((s) => [s.task, s]));
  const series = live.gpuSeries.get(index);
  const version = series?.version ?? 0;
  const tasks = gpu.slices.map((s) => s.taskId).filter((t): t is string => t !== null);
  return (
    <div>
      <h1>
        GPU {gpu.index} <span class="muted">{gpu.name}</span> <HealthBadges gpu={gpu} sample={sample} />
      </h1>
      <p class="muted mono">
        {gpu.uuid} · {gpu.pciBusId ?? ''}
      </p>
      <div class="figures-row">
        <Figure label="Utilization" value={percent(sample?.utilizationGpu ?? gpu.utilizationGpu)} />
        <Figure label="Memory used" value={`${bytes(sample?.memoryUsedBytes ?? gpu.memoryUsedBytes)} / ${bytes(gpu.memoryTotalBytes)}`} />
        <Figure label="Reserved by slices" value={`${bytes(gpu.allocatedMemoryBytes)} · ${milli(gpu.allocatedComputeMilli)} compute`} />
        <Figure label="Temperature" value={unit(sample?.temperatureCelsius ?? gpu.temperatureC, '°C')} />
        <Figure label="Power" value={`${unit(sample?.powerWatts ?? gpu.powerDrawWatts, 'W')} / ${unit(sample?.powerLimitWatts ?? gpu.powerLimitWatts, 'W')}`} />
        <Figure label="SM clock" value={sample?.clockSmHz != null ? unit(sample.clockSmHz / 1e6, 'MHz') : unit(gpu.clockSmMHz, 'MHz')} />
        <Figure label="XID / ECC uncorrected" value={`${sample?.xidErrors ?? '–'} / ${sample?.eccUncorrectedErrors ?? '–'}`} />
      </div>
      <div class="charts">
        <Chart title="Utilization" series={series} lines={[{ key: 'util', label: 'GPU' }]} format={(v) => percent(v)} max={1} version={version} />
        <Chart title="Memory used" series={series} lines={[{ key: 'mem', label: 'used' }]} format={bytes} max={gpu.memoryTotalBytes} steps={BYTE_STEPS} version={version} />
      </div>
      <Section title="Slices" id="slices">
        {gpu.slices.length === 0 ? (
          <p class="muted">No slices on this GPU.</p>
        ) : (
          <Table head={['Task', 'Tenant', 'State', 'Memory (used / limit)', 'Compute (achieved / limit)']}>
            {gpu.slices.map((s, i) => {
              const live = s.taskId === null ? undefined : sliceSamples.get(s.taskId);
              const used = live?.memoryUsedBytes ?? s.usedMemoryBytes;
              const share = live?.computeShare ?? s.computeShare;
              const limit = s.computeMilli > 0 ? s.computeMilli / 1000 : null;
              return (
                <tr key={s.taskId ?? `other-${i}`}>
                  <td>
                    <TaskLink id={s.taskId} />
                  </td>
                  <td>{s.tenant ?? '–'}</td>
                  <td>{live?.state ?? 'running'}</td>
                  <td>
                    <Meter used={used} limit={s.memoryBytes} label={`${bytes(used)} / ${bytes(s.memoryBytes)}`} />
                  </td>
                  <td>
                    <Meter used={share} limit={limit ?? 1} label={`${percent(share)} / ${limit === null ? 'no limit' : percent(limit)}`} />
                  </td>
                </tr>
              );
            })}
          </Table>
        )}
      </Section>
      {tasks.length > 0 ? (
        <div class="charts">
          <Chart title="Slice memory used" series={series} lines={tasks.map((t) => ({ key: `mem:${t}`, label: t }))} format={bytes} steps={BYTE_STEPS} version={version} />
          <Chart title="Slice compute share" series={series} lines={tasks.map((t) => ({ key: `share:${t}`, label: t }))} format={(v) => percent(v)} max={1} version={version} />
        </div>
      ) : null}
    </div>
  );
}

export function Figure(props: { label: string; value: string }) {
  return (
    <div class="figure">
      <div class="figure-label muted">{props.label}</div>
      <div class="figure-value">{props.value}</div>
    </div>
  );
}
