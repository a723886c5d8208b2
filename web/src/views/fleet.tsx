/** The fleet at a glance: counts, then each GPU as a card with its memory, compute and slices. */
import type { GpuSample, MonitorSample, SliceSample } from '../../../src/contract/monitor';
import type { GpuWithSlices as Gpu } from '../../../src/contract/gpus';
import { bytes, milli, percent, unit } from '../format';
import type { LiveState } from '../live';
import { Badge, Meter, Section, TaskLink } from '../widgets';

export function gpuSampleOf(sample: MonitorSample | null, index: number): GpuSample | undefined {
  return sample?.gpus.find((g) => g.index === index);
}

export function Fleet({ state }: { state: LiveState }) {
  const gpus = state.gpus?.gpus ?? [];
  const running = state.tasks.filter((t) => t.state === 'running').length;
  const queued = state.tasks.filter((t) => t.state === 'queued').length;
  const suspended = state.tasks.filter((t) => t.state === 'suspended').length;
  const firing = Array.isArray(state.alerts) ? state.alerts.filter((a) => a.state === 'firing' && !a.silenced).length : null;
  return (
    <div>
      <div class="tiles" id="summary">
        <Tile label="GPUs" value={String(gpus.length)} detail={state.gpus?.description ?? ''} />
        <Tile label="Running" value={String(running)} detail={suspended > 0 ? `${suspended} suspended` : 'tasks'} href="#/tasks" />
        <Tile label="Queued" value={String(queued)} detail={state.sample?.queue.oldestWaitSeconds != null ? `oldest waits ${Math.round(state.sample.queue.oldestWaitSeconds)}s` : 'tasks'} href="#/queue" />
        <Tile label="Alerts firing" value={firing === null ? '–' : String(firing)} detail={state.alerts === 'unavailable' ? 'not available' : ''} href="#/alerts" />
        <Tile label="Tenants" value={String(state.tenants.length)} detail="" href="#/tenants" />
      </div>
      <Section title="GPUs">
        {state.gpus === null ? <p class="muted">Loading…</p> : null}
        <div class="cards">
          {gpus.map((g) => (
            <GpuCard key={g.index} gpu={g} sample={gpuSampleOf(state.sample, g.index)} slices={state.sample?.slices.filter((s) => s.gpu === g.index) ?? []} />
          ))}
        </div>
      </Section>
    </div>
  );
}

function Tile(props: { label: string; value: string; detail: string; href?: string }) {
  const body = (
    <>
      <div class="tile-value">{props.value}</div>
      <div class="tile-label">{props.label}</div>
      <div class="tile-detail muted">{props.detail}</div>
    </>
  );
  return props.href === undefined ? <div class="tile">{body}</div> : <a class="tile" href={props.href}>{body}</a>;
}

export function HealthBadges({ gpu, sample }: { gpu: Gpu; sample: GpuSample | undefined }) {
  const health = sample?.health ?? gpu.health;
  return (
    <>
      <Badge kind={health === 'ok' ? 'ok' : 'crit'}>{health}</Badge>
      {sample?.cordoned ? <Badge kind="warn">cordoned</Badge> : null}
    </>
  );
}

function GpuCard({ gpu, sample, slices }: { gpu: Gpu; sample: GpuSample | undefined; slices: readonly SliceSample[] }) {
  const usedBy = new Map(slices.map((s) => [s.task, s.memoryUsedBytes]));
  const used = sample?.memoryUsedBytes ?? gpu.memoryUsedBytes;
  return (
    <div class="card gpu-card" data-gpu={gpu.index}>
      <div class="card-head">
        <a href={`#/gpu/${gpu.index}`}>
          <strong>GPU {gpu.index}</strong> <span>{gpu.model}</span>
        </a>{' '}
        <HealthBadges gpu={gpu} sample={sample} />
      </div>
      <Meter used={used} limit={gpu.memoryTotalBytes} label={`memory used ${bytes(used)} / ${bytes(gpu.memoryTotalBytes)}`} />
      <Meter used={gpu.allocatedMemoryBytes} limit={gpu.memoryTotalBytes} label={`memory reserved by slices ${bytes(gpu.allocatedMemoryBytes)}`} />
      <Meter used={gpu.allocatedComputeMilli} limit={1000} label={`compute reserved ${milli(gpu.allocatedComputeMilli)}`} />
      <div class="figures muted">
        util {percent(sample?.utilizationGpu ?? gpu.utilizationGpu)} · {unit(sample?.temperatureCelsius ?? gpu.temperatureC, '°C')} · {unit(sample?.powerWatts ?? gpu.powerDrawWatts, 'W')}
      </div>
      <ul class="slices">
        {gpu.slices.length === 0 ? <li class="muted">no slices</li> : null}
        {gpu.slices.map((s, i) => (
          <li key={s.taskId ?? `other-${i}`}>
            <TaskLink id={s.taskId} /> <span class="muted">{s.tenant ?? ''}</span> {bytes((s.taskId === null ? undefined : usedBy.get(s.taskId)) ?? s.usedMemoryBytes)} / {bytes(s.memoryBytes)}
            {s.computeMilli > 0 ? ` · ${milli(s.computeMilli)}` : ''}
          </li>
        ))}
      </ul>
    </div>
  );
}
