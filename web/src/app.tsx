/**
 * The dashboard's shell: the token form, the header with its navigation, and the view the
 * address's hash names (#/, #/gpu/0, #/tasks, #/task/<id>, #/queue, #/alerts, #/tenants).
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { ApiError, request, session } from './api';
import { Live, type LiveState } from './live';
import { Fleet } from './views/fleet';
import { GpuView } from './views/gpu';
import { AlertsView, TenantsView } from './views/others';
import { QueueView, TasksView } from './views/queue';
import { TaskView } from './views/task';

export function App() {
  const [token, setToken] = useState(session.token());
  const [refusal, setRefusal] = useState<string | null>(null);
  if (token === null) {
    return (
      <Login
        refusal={refusal}
        onToken={(t) => {
          session.save(t);
          setRefusal(null);
          setToken(t);
        }}
      />
    );
  }
  return (
    <Dashboard
      key={token}
      onSignOut={(why) => {
        session.clear();
        setRefusal(why);
        setToken(null);
      }}
    />
  );
}

/**
 * The token is tried with one call before the dashboard opens: a wrong one then costs one failed
 * authentication, not one per stream and list (the daemon blocks an address after 10 a minute).
 */
async function check(token: string): Promise<string | null> {
  session.save(token);
  try {
    await request('GET', '/v1/tenants');
    return null;
  } catch (err) {
    session.clear();
    return err instanceof ApiError ? err.message : (err as Error).message;
  }
}

function Login({ refusal, onToken }: { refusal: string | null; onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const shown = problem ?? refusal;
  return (
    <main class="login">
      <h1>gpushare</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const token = value.trim();
          if (token === '') return;
          void check(token).then((why) => (why === null ? onToken(token) : setProblem(why)));
        }}
      >
        <label for="token">API token</label>
        <input id="token" type="password" autocomplete="off" value={value} onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        <button type="submit">Open the dashboard</button>
        {shown !== null ? (
          <p class="error" id="refusal">
            {shown}
          </p>
        ) : null}
        <p class="muted">The token is the one the CLI uses (GPUSHARE_TOKEN). It stays in this tab only and goes with every API call; a user token shows its own tenant's tasks.</p>
      </form>
    </main>
  );
}

function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

const NAV: readonly [string, string][] = [
  ['#/', 'Fleet'],
  ['#/tasks', 'Tasks'],
  ['#/queue', 'Queue'],
  ['#/alerts', 'Alerts'],
  ['#/tenants', 'Tenants'],
];

function Dashboard({ onSignOut }: { onSignOut: (why: string | null) => void }) {
  const live = useMemo(() => new Live((why) => onSignOut(`The daemon refused the token: ${why}`)), []);
  const [state, setState] = useState<LiveState>(live.state);
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const off = live.subscribe(() => setState(live.state));
    live.start();
    // Ages ("waiting 3m") tick without the daemon: once a second, from the page's own clock.
    const tick = setInterval(() => setNow(Date.now()), 1000);
    return () => {
      off();
      clearInterval(tick);
      live.stop();
    };
  }, []);
  const hash = useHash();
  const path = hash.replace(/^#/, '') || '/';
  const gpu = /^\/gpu\/(\d+)$/.exec(path);
  const task = /^\/task\/([0-9a-zA-Z_-]+)$/.exec(path);
  const firing = Array.isArray(state.alerts) ? state.alerts.filter((a) => a.state === 'firing' && !a.silenced).length : 0;
  let view;
  if (gpu) view = <GpuView index={Number(gpu[1])} state={state} live={live} />;
  else if (task) view = <TaskView id={task[1]!} state={state} live={live} now={now} />;
  else if (path === '/tasks') view = <TasksView state={state} now={now} />;
  else if (path === '/queue') view = <QueueView state={state} now={now} />;
  else if (path === '/alerts') view = <AlertsView state={state} />;
  else if (path === '/tenants') view = <TenantsView state={state} />;
  else view = <Fleet state={state} />;
  const current = gpu ? '#/' : task ? '#/tasks' : `#${path}`;
  return (
    <>
      <header>
        <span class="brand">gpushare</span>
        <nav>
          {NAV.map(([href, label]) => (
            <a key={href} href={href} class={current === href ? 'current' : ''}>
              {label}
              {href === '#/alerts' && firing > 0 ? <span class="count">{firing}</span> : null}
            </a>
          ))}
        </nav>
        <span class={`live ${state.streaming ? 'on' : ''}`} title={state.streaming ? 'samples arrive live' : 'no live samples'}>
          {state.streaming ? `live · ${state.sample?.hostname ?? ''}` : 'not live'}
        </span>
        <button type="button" class="link" onClick={() => onSignOut(null)}>
          sign out
        </button>
      </header>
      {state.problem !== null ? <p class="banner error">{state.problem}</p> : null}
      <main>{view}</main>
    </>
  );
}
