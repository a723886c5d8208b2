/** One task: its record, why it waits, its usage charts, its output, and the actions its state allows. */
import { useEffect, useState } from 'preact/hooks';
import type { TaskBody } from '../../../src/contract/schemas';
import { ApiError, getJson, post, readNdjson } from '../api';
import { BYTE_STEPS, Chart } from '../chart';
import { bytes, clock, percent, since } from '../format';
import type { Live, LiveState } from '../live';
import { Section } from '../widgets';
import { Figure } from './gpu';
import { slice, StateBadge } from './queue';
import { WaitDetails } from './waiting';

/** Output kept on the page: the last this many characters. */
const LOG_CHARS = 200_000;
const ENDED = new Set(['exited', 'killed', 'failed', 'lost']);

export function TaskView({ id, state, live, now }: { id: string; state: LiveState; live: Live; now: number }) {
  const [task, setTask] = useState<TaskBody | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const listed = state.tasks.find((t) => t.id === id);

  // The record again whenever the live list changed (a finished task leaves the list: fetched once more then).
  useEffect(() => {
    const abort = new AbortController();
    getJson<TaskBody>(`/v1/tasks/${encodeURIComponent(id)}`, abort.signal).then(
      (t) => {
        setTask(t);
        setProblem(null);
      },
      (err: unknown) => {
        if ((err as Error).name !== 'AbortError') setProblem((err as Error).message);
      },
    );
    return () => abort.abort();
  }, [id, state.tasks]);
  useEffect(() => {
    void live.backfillTask(id);
  }, [id]);

  const shown = listed ?? task;
  if (shown === null) return problem === null ? <p class="muted">Loading…</p> : <p class="error">{problem}</p>;
  const act = async (verb: 'kill' | 'suspend' | 'resume'): Promise<void> => {
    setBusy(verb);
    setProblem(null);
    try {
      setTask(await post<TaskBody>(`/v1/tasks/${encodeURIComponent(shown.id)}/${verb}`));
      live.refreshSoon();
    } catch (err) {
      setProblem(err instanceof ApiError ? `${verb}: ${err.message} (${err.code})` : (err as Error).message);
    } finally {
      setBusy(null);
    }
  };
  const series = live.taskSeries.get(shown.id);
  const s = shown.state;
  return (
    <div>
      <h1>
        Task <span class="mono">{shown.id}</span> <StateBadge state={s} />
      </h1>
      <div class="actions">
        {s === 'running' ? <Action verb="suspend" busy={busy} act={act} /> : null}
        {s === 'suspended' ? <Action verb="resume" busy={busy} act={act} /> : null}
        {!ENDED.has(s) ? <Action verb="kill" busy={busy} act={act} /> : null}
      </div>
      {problem !== null ? <p class="error" id="action-problem">{problem}</p> : null}
      <div class="figures-row">
        <Figure label="Tenant" value={shown.tenant ?? '–'} />
        <Figure label="Priority" value={String(shown.priority)} />
        <Figure label="Asks" value={slice(shown)} />
        <Figure label="GPUs" value={shown.gpus?.map((g) => `${g.index} (${bytes(g.memoryBytes)})`).join(', ') ?? '–'} />
        <Figure label="Submitted" value={`${clock(shown.submittedAt)} (${since(shown.submittedAt, now)} ago)`} />
        <Figure label={ENDED.has(s) ? 'Ran' : 'Running for'} value={shown.startedAt === null ? '–' : since(shown.startedAt, shown.finishedAt ?? now)} />
        <Figure label="Peak memory" value={bytes(shown.peakMemoryBytes)} />
        <Figure label="Exit" value={shown.exitCode !== null ? `code ${shown.exitCode}` : (shown.signal ?? '–')} />
      </div>
      <p class="mono command">{shown.command.join(' ')}</p>
      {shown.message !== null ? <p class="message">{shown.message}</p> : null}
      {shown.waiting !== null ? (
        <Section title="Why it waits" id="why">
          <WaitDetails reason={shown.waiting} />
        </Section>
      ) : null}
      {shown.gpus !== null && shown.gpus.length > 0 ? (
        <div class="charts">
          <Chart title="Memory (used and limit, all its GPUs)" series={series} lines={[{ key: 'mem', label: 'used' }, { key: 'memLimit', label: 'limit' }]} format={bytes} steps={BYTE_STEPS} version={series?.version ?? 0} />
          <Chart title="Compute share (achieved and limit, of one GPU)" series={series} lines={[{ key: 'share', label: 'achieved' }, { key: 'shareLimit', label: 'limit' }]} format={(v) => percent(v)} version={series?.version ?? 0} />
        </div>
      ) : null}
      <Logs id={shown.id} ended={ENDED.has(s)} />
    </div>
  );
}

function Action(props: { verb: 'kill' | 'suspend' | 'resume'; busy: string | null; act: (verb: 'kill' | 'suspend' | 'resume') => Promise<void> }) {
  return (
    <button type="button" class={props.verb === 'kill' ? 'danger' : ''} disabled={props.busy !== null} onClick={() => void props.act(props.verb)} data-action={props.verb}>
      {props.busy === props.verb ? `${props.verb}…` : props.verb}
    </button>
  );
}

/** The task's output: its last 200 lines, then followed as it grows while the task lives. */
function Logs({ id, ended }: { id: string; ended: boolean }) {
  const [text, setText] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    const abort = new AbortController();
    let all = '';
    setText('');
    readNdjson<{ stream: string; data: string }>(
      `/v1/tasks/${encodeURIComponent(id)}/logs?tail=200${ended ? '' : '&follow=1'}`,
      (chunk) => {
        all = (all + chunk.data).slice(-LOG_CHARS);
        setText(all);
      },
      abort.signal,
    ).catch((err: unknown) => {
      if ((err as Error).name !== 'AbortError') setProblem((err as Error).message);
    });
    return () => abort.abort();
  }, [id, ended]);
  return (
    <Section title="Output" id="logs">
      {problem !== null ? <p class="error">{problem}</p> : null}
      <pre class="logs">{text === '' ? '(no output yet)' : text}</pre>
    </Section>
  );
}
