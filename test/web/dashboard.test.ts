/**
 * The dashboard in a real browser (headless Chromium through playwright-core) against a real
 * daemon: every view, its content, and the actions (a task killed from its page ends). Each view
 * is saved under build/screenshots/ for a person to look at.
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AlertEvent } from '../../src/contract/monitor.js';
import type { Principal } from '../../src/contract/principal.js';
import { startDashboard, type Dashboard } from './fixture.js';

const admin: Principal = { actor: 'token:ops', role: 'admin', tenant: 'ops' };
const alice: Principal = { actor: 'token:alice', role: 'user', tenant: 'alice' };
let dash: Dashboard;
let page: Page;
let running = '';
let waiting = '';

beforeAll(async () => {
  dash = await startDashboard();
  dash.d.daemon.createTenant('alice', { gpus: 1, memory: '70Gi' }, admin);
  running = dash.d.daemon.submit({ command: ['sh', '-c', 'echo hello from the dashboard test; exec sleep 120'], gpus: 1, memory: '60Gi', compute: 50 }, alice).id;
  waiting = dash.d.daemon.submit({ command: ['sleep', '120'], gpus: 1, memory: '40Gi', tenant: 'ops' }, admin).id;
  page = await dash.page();
}, 60_000);
afterAll(async () => {
  await dash?.close();
});

const text = (selector: string): Promise<string> => page.locator(selector).innerText();

describe('the dashboard in a browser', () => {
  it('asks for a token, refuses a wrong one with the daemon\'s reason, and opens with a right one', async () => {
    await page.goto(`${dash.url}/ui/`);
    await page.fill('#token', 'not-a-token');
    await page.click('button[type=submit]');
    await page.waitForSelector('#refusal');
    expect(await text('#refusal')).toContain('not known');
    await dash.shot(page, 'login');
    await page.fill('#token', 'root-token');
    await page.click('button[type=submit]');
    await page.waitForSelector('.gpu-card');
  });

  it('shows the fleet at a glance: counts, each GPU with its memory, compute and slices', async () => {
    await page.locator('.gpu-card', { hasText: running }).waitFor();
    const card = await text('.gpu-card');
    expect(card).toContain('GPU 0');
    expect(card).toContain('H100-80GB');
    expect(card).toMatch(/memory reserved by slices 60\.0 GiB/);
    expect(card).toContain('compute reserved 50%');
    expect(await text('#summary')).toMatch(/1\s*Running/);
    expect(await text('#summary')).toMatch(/1\s*Queued/);
    await page.waitForSelector('header .live.on');
    await dash.shot(page, 'fleet');
  });

  it('shows a GPU with its slices, limit against use, and live charts', async () => {
    await page.click('.gpu-card a[href="#/gpu/0"]');
    await page.waitForSelector('#slices tbody tr');
    const row = await text('#slices tbody tr');
    expect(row).toContain(running);
    expect(row).toContain('alice');
    expect(row).toMatch(/ \/ 60\.0 GiB/);
    expect(row).toMatch(/\d+% \/ 50%/);
    // Four charts (utilization, memory, slice memory, slice compute), drawn once samples came.
    await page.waitForFunction("document.querySelectorAll('.chart canvas').length === 4 && !document.querySelector('.chart .muted')");
    await page.waitForTimeout(1500);
    await dash.shot(page, 'gpu');
  });

  it('lists the queue in start order with the structured reason each task waits', async () => {
    await page.click('header a[href="#/queue"]');
    await page.waitForSelector(`#queue tr[data-task="${waiting}"]`);
    const row = await text(`#queue tr[data-task="${waiting}"]`);
    expect(row).toContain('no room');
    expect(row).toMatch(/GPU 0: insufficient/i);
    await dash.shot(page, 'queue');
  });

  it('shows tenants against their quotas', async () => {
    await page.click('header a[href="#/tenants"]');
    await page.waitForSelector('#tenants tr[data-tenant="alice"]');
    const row = await text('#tenants tr[data-tenant="alice"]');
    expect(row).toContain('1 / 1');
    expect(row).toContain('60.0 GiB / 70.0 GiB');
    await dash.shot(page, 'tenants');
  });

  it('shows alerts, or says they are not available on this daemon', async () => {
    await page.click('header a[href="#/alerts"]');
    await page.waitForSelector('#alerts');
    const alerts = await text('#alerts');
    expect(alerts).toMatch(/not available on this daemon|No alerts|firing/);
    await dash.shot(page, 'alerts');
  });

  it('lists alerts firing first, with the count in the header, where the daemon has them', async () => {
    // The alert engine is not this test's subject: GET /v1/alerts answers as the contract says.
    const at = Date.now();
    const alert = (id: string, state: AlertEvent['state'], severity: AlertEvent['severity'], summary: string, subject: AlertEvent['subject']): AlertEvent => ({
      id, rule: `rule-${id}`, severity, state, subject, value: 0.9, threshold: 0.85, startedAt: at - 120_000, resolvedAt: state === 'resolved' ? at - 60_000 : null, summary, silenced: false,
    });
    const tab = await dash.page('root-token');
    await tab.route('**/v1/alerts?*', (route) => route.fulfill({ json: { alerts: [
      alert('a1', 'resolved', 'warning', 'GPU 0 temperature at 86 °C (threshold 85 °C) for 1m', { gpu: 0 }),
      alert('a2', 'firing', 'critical', `task ${waiting} memory at 96% of its slice (threshold 95%) for 2m`, { task: waiting, tenant: 'ops' }),
      // Kept from before subjects left out an empty tenant: a task of no tenant.
      alert('a3', 'resolved', 'warning', 'task 0123abcd on GPU 0 memory (of its slice) at 90% (threshold 85%)', { task: '0123abcd', gpu: 0, tenant: '' }),
    ] } }));
    await tab.goto(`${dash.url}/ui/#/alerts`);
    await tab.waitForSelector('#alerts tbody tr');
    const rows = await tab.locator('#alerts tbody tr').allInnerTexts();
    expect(rows[0]).toMatch(/firing\s+critical\s+rule-a2/);
    expect(rows[0]).toContain(waiting);
    expect(rows.find((r) => r.includes('rule-a1'))).toMatch(/resolved\s+warning\s+rule-a1\s+GPU 0/);
    expect(rows[0]).toMatch(/tenant ops/);
    expect(rows.find((r) => r.includes('rule-a3'))).not.toMatch(/tenant/);
    expect(await tab.locator('header a[href="#/alerts"] .count').innerText()).toBe('1');
    await dash.shot(tab, 'alerts-firing');
    await tab.context().close();
  });

  it('shows an alert as it fires, from the stream, without waiting for the next read of the alerts', async () => {
    const tab = await dash.page('root-token');
    await tab.goto(`${dash.url}/ui/#/alerts`);
    await tab.waitForSelector('header .live.on');
    await tab.waitForSelector('#alerts');
    const at = Date.now();
    dash.alerts.fire({ id: 'live-1', rule: 'gpu-temperature', severity: 'warning', state: 'firing', subject: { gpu: 0 }, value: 88, threshold: 85, startedAt: at, resolvedAt: null, summary: 'GPU 0 temperature at 88 °C (threshold 85 °C)', silenced: false });
    // Well inside the 30 s between the page's own reads of the alerts.
    await tab.locator('#alerts tbody tr', { hasText: 'gpu-temperature' }).waitFor({ timeout: 5_000 });
    expect(await tab.locator('header a[href="#/alerts"] .count').innerText()).toBe('1');
    dash.alerts.fire({ id: 'live-1', rule: 'gpu-temperature', severity: 'warning', state: 'resolved', subject: { gpu: 0 }, value: 80, threshold: 85, startedAt: at, resolvedAt: Date.now(), summary: 'GPU 0 temperature at 88 °C (threshold 85 °C)', silenced: false });
    await tab.locator('#alerts tbody tr', { hasText: 'resolved' }).waitFor({ timeout: 5_000 });
    await tab.context().close();
  });

  it("shows a task's record, output and charts, and kills it from its page; the queued task then starts", async () => {
    await page.click('header a[href="#/tasks"]');
    await page.click(`#tasks tr[data-task="${running}"] a`);
    await page.locator('#logs pre', { hasText: 'hello from the dashboard test' }).waitFor();
    expect(await text('main h1')).toContain('running');
    await page.waitForFunction("document.querySelectorAll('.chart canvas').length === 2 && !document.querySelector('.chart .muted')");
    await dash.shot(page, 'task');
    await page.click('button[data-action=kill]');
    await page.locator('main h1', { hasText: 'killed' }).waitFor({ timeout: 15_000 });
    expect(dash.d.daemon.get(running).state).toBe('killed');
    expect(await page.locator('button[data-action]').count()).toBe(0);
    await dash.shot(page, 'task-killed');
    // The room it left starts the waiting task; the page hears of it from the event stream.
    await page.click('header a[href="#/queue"]');
    await page.waitForSelector('#queue >> text=Nothing waits.', { timeout: 15_000 });
  });

  it('stays live in five tabs of one browser at once (one stream each, under the six connections a browser allows a host)', async () => {
    const tabs = await dash.tabs('root-token', 5);
    for (const [i, tab] of tabs.entries()) await tab.goto(`${dash.url}/ui/${i === 0 ? '' : '#/gpu/0'}`);
    for (const tab of tabs) await tab.waitForSelector('header .live.on', { timeout: 10_000 });
    // A change still reaches every tab: its stream carries the events too.
    const id = dash.d.daemon.submit({ command: ['sleep', '120'], gpus: 0 }, admin).id;
    for (const tab of tabs) await tab.goto(`${dash.url}/ui/#/tasks`).then(() => tab.waitForSelector(`#tasks tr[data-task="${id}"]`, { timeout: 10_000 }));
    dash.d.daemon.kill(id, admin, { signal: 'SIGKILL' });
    await tabs[0]!.context().close();
  });

  it('shows a task submitted after its first read and before its stream was live, even when that first read answers last', async () => {
    const tab = await dash.page('root-token');
    // The first GET /v1/tasks is answered by the daemon at once (before the submission) but
    // reaches the page only when released; the stream opens only once the task is submitted.
    let fetched: () => void = () => {};
    const firstRead = new Promise<void>((resolve) => (fetched = resolve));
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => (release = resolve));
    let open: () => void = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    let reads = 0;
    let delivered: () => void = () => {};
    const staleDelivered = new Promise<void>((resolve) => (delivered = resolve));
    await tab.route((url) => url.pathname === '/v1/tasks', async (route) => {
      if (++reads > 1) return route.continue();
      const stale = await route.fetch();
      fetched();
      await released;
      await route.fulfill({ response: stale });
      delivered();
    });
    await tab.route((url) => url.pathname === '/v1/monitor/stream', async (route) => {
      await opened;
      return route.continue();
    });
    await tab.goto(`${dash.url}/ui/#/tasks`);
    await firstRead;
    const id = dash.d.daemon.submit({ command: ['sleep', '120'], gpus: 0 }, admin).id;
    open();
    await tab.waitForSelector('header .live.on', { timeout: 10_000 });
    await tab.waitForSelector(`#tasks tr[data-task="${id}"]`, { timeout: 10_000 });
    // The first read's answer, older than what is shown, lands now: the task stays listed.
    release();
    await staleDelivered;
    await tab.waitForTimeout(500);
    expect(await tab.locator(`#tasks tr[data-task="${id}"]`).count()).toBe(1);
    dash.d.daemon.kill(id, admin, { signal: 'SIGKILL' });
    await tab.context().close();
  });

  it("shows a user token its own tenant's tasks only, and the reason an action is refused", async () => {
    const user = await dash.page('alice-token');
    await user.goto(`${dash.url}/ui/#/tasks`);
    const mine = dash.d.daemon.submit({ command: ['sleep', '120'], gpus: 1, memory: '10Gi' }, alice).id;
    await user.waitForSelector(`#tasks tr[data-task="${mine}"]`);
    expect(await user.locator(`#tasks tr[data-task="${waiting}"]`).count()).toBe(0);
    // Suspending needs the checkpoint API, which this simulated daemon lacks: the page says why.
    await user.click(`#tasks tr[data-task="${mine}"] a`);
    await user.locator('main h1', { hasText: 'running' }).waitFor({ timeout: 10_000 }).catch(async (err: unknown) => {
      throw new Error(`the task page did not show it running (daemon: ${dash.d.daemon.get(mine).state}):\n${await user.locator('body').innerText()}`, { cause: err });
    });
    await user.click('button[data-action=suspend]');
    await user.waitForSelector('#action-problem');
    expect(await user.locator('#action-problem').innerText()).toMatch(/^suspend: .+\(GS_ERR_[A-Z_]+\)$/);
    await dash.shot(user, 'user-task');
    await user.context().close();
  });
});
