// monitor_compare.mjs: the checks of scripts/gpu-check-monitor.sh, against a running daemon.
//
//   node scripts/gpu/monitor_compare.mjs URL TOKEN OUT_DIR [--dry-run]
//
// Scrapes GET /metrics twice, 5 s apart, and compares with what it reads itself at the same
// moments: each running task's region (dist's region reader: the slice's memory must equal it to
// the byte; its achieved compute share must agree with the gate's busy time over the 5 s), and
// nvidia-smi (the GPU's figures, within the tolerances the inventory check uses). Then the
// alerts (a slice held at 90% of its limit must fire the memory warning) and one history range.
// Writes monitor.json and a markdown table (stdout and OUT_DIR/monitor.md); exits 1 when a check fails.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readRegion } from '../../dist/gpu/region/index.js';

const [url, token, out, flag] = process.argv.slice(2);
const dry = flag === '--dry-run';
const failures = [];
const check = (ok, what) => {
  if (!ok) failures.push(what);
  return ok ? 'yes' : '**NO**';
};
const api = async (path, accept = 'application/json') => {
  const r = await globalThis.fetch(`${url}${path}`, { headers: { authorization: `Bearer ${token}`, accept } });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status} ${await r.text()}`);
  return accept === 'application/json' ? r.json() : r.text();
};

/** Prometheus text: `name{labels} value` lines as [{name, labels, value}]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}
const metric = (ms, name, labels = {}) => ms.find((m) => m.name === name && Object.entries(labels).every(([k, v]) => m.labels[k] === v))?.value;

function smi() {
  if (dry) return null;
  const q = 'index,memory.used,memory.total,utilization.gpu,temperature.gpu,power.draw,clocks.sm';
  return execFileSync('nvidia-smi', [`--query-gpu=${q}`, '--format=csv,noheader,nounits'], { encoding: 'utf8' })
    .trim().split('\n').map((l) => l.split(',').map((x) => Number(x.trim())))
    .map(([index, used, total, util, temp, power, sm]) => ({ index, usedMiB: used, totalMiB: total, util, temp, power, smMHz: sm }));
}

/** Every live slot's committed bytes of the limited kinds, and busy ns, summed over the task's processes. */
function regionOf(path) {
  try {
    const r = readRegion(path);
    let bytes = 0;
    let busyNs = 0;
    for (const slot of r.slots) {
      if (slot.state !== 'active') continue;
      for (const d of slot.devices) {
        bytes += d.limitedBytes;
        busyNs += d.busyNs;
      }
    }
    return { bytes, busyNs };
  } catch (e) {
    return { error: e.message };
  }
}

const tasks = (await api('/v1/tasks?state=running')).filter((t) => t.state === 'running');
const first = { at: Date.now(), metrics: parseMetrics(await api('/metrics', 'text/plain')), regions: Object.fromEntries(tasks.map((t) => [t.id, regionOf(t.regionPath)])), smi: smi() };
await new Promise((r) => setTimeout(r, 5000));
const second = { at: Date.now(), metrics: parseMetrics(await api('/metrics', 'text/plain')), regions: Object.fromEntries(tasks.map((t) => [t.id, regionOf(t.regionPath)])), smi: smi() };

const lines = [];
const say = (s = '') => lines.push(s);
say(`## Monitoring on ${dry ? 'the SIMULATED backend (dry run: no GPU, no regions)' : 'a real GPU'}\n`);
say('### Slices: /metrics against the task\'s region, read right after the scrape\n');
say('| task | memory limit | /metrics memory used | region (limited kinds) | equal to the byte | /metrics compute share (mean of 2) | gate busy time / 5 s | agree within 5 points |');
say('| --- | --- | --- | --- | --- | --- | --- | --- |');
const slices = [];
for (const t of tasks) {
  const m1 = metric(first.metrics, 'gpushare_slice_memory_used_bytes', { task: t.id });
  const m2 = metric(second.metrics, 'gpushare_slice_memory_used_bytes', { task: t.id });
  const limit = metric(second.metrics, 'gpushare_slice_memory_limit_bytes', { task: t.id });
  const r2 = second.regions[t.id];
  const r1 = first.regions[t.id];
  // The exporter's figure is at most one sample old; a task holding still reads the same in both.
  const equal = r2.bytes !== undefined && (m2 === r2.bytes || m1 === r1.bytes);
  const share = ((metric(first.metrics, 'gpushare_slice_compute_share_ratio', { task: t.id }) ?? NaN) + (metric(second.metrics, 'gpushare_slice_compute_share_ratio', { task: t.id }) ?? NaN)) / 2;
  const busy = r1.busyNs !== undefined && r2.busyNs !== undefined ? (r2.busyNs - r1.busyNs) / 1e6 / (second.at - first.at) : NaN;
  const agree = dry || Math.abs(share - busy) <= 0.05;
  slices.push({ task: t.id, limit, metrics: [m1, m2], region: [r1, r2], share, busy });
  say(`| ${t.id} | ${((limit ?? 0) / 2 ** 30).toFixed(2)} GiB | ${m2 ?? 'absent'} | ${r2.bytes ?? r2.error} | ${check(dry || equal, `${t.id}: /metrics ${m2} vs region ${r2.bytes}`)} | ${(share * 100).toFixed(1)}% | ${(busy * 100).toFixed(1)}% | ${check(agree, `${t.id}: share ${share} vs busy ${busy}`)} |`);
}

say('\n### The GPU: /metrics against nvidia-smi, read right after the scrape\n');
say('| GPU | figure | /metrics | nvidia-smi | tolerance | within |');
say('| --- | --- | --- | --- | --- | --- |');
const gpus = [];
for (const s of second.smi ?? []) {
  const g = { gpu: String(s.index) };
  const rows = [
    ['memory used (MiB)', metric(second.metrics, 'gpushare_gpu_memory_used_bytes', g) / 2 ** 20, s.usedMiB, 64],
    ['memory total (MiB)', metric(second.metrics, 'gpushare_gpu_memory_total_bytes', g) / 2 ** 20, s.totalMiB, 1],
    ['temperature (C)', metric(second.metrics, 'gpushare_gpu_temperature_celsius', g), s.temp, 2],
    ['power (W)', metric(second.metrics, 'gpushare_gpu_power_watts', g), s.power, Math.max(25, s.power * 0.15)],
    ['utilization (%)', 100 * metric(second.metrics, 'gpushare_gpu_utilization_ratio', g), s.util, 25],
    ['SM clock (MHz)', metric(second.metrics, 'gpushare_gpu_sm_clock_hertz', g) / 1e6, s.smMHz, 150],
  ];
  for (const [what, ours, theirs, tol] of rows) {
    gpus.push({ gpu: s.index, what, ours, theirs, tol });
    say(`| ${s.index} | ${what} | ${Number(ours).toFixed(1)} | ${theirs} | ±${Number(tol).toFixed(0)} | ${check(Math.abs(ours - theirs) <= tol, `GPU ${s.index} ${what}: ${ours} vs ${theirs}`)} |`);
  }
}
if (dry) say('(no nvidia-smi on the simulated backend)');

const alerts = (await api('/v1/alerts?state=all')).alerts;
const memoryAlerts = alerts.filter((a) => a.rule.startsWith('slice-memory'));
say('\n### Alerts\n');
say('| id | rule | severity | state | subject | value | summary |');
say('| --- | --- | --- | --- | --- | --- | --- |');
for (const a of alerts) say(`| ${a.id} | ${a.rule} | ${a.severity} | ${a.state} | ${JSON.stringify(a.subject)} | ${a.value.toFixed(3)} | ${a.summary} |`);
if (!dry) say(`\nEach task held 90% of its slice: the slice-memory warning fired for each: ${check(tasks.every((t) => memoryAlerts.some((a) => a.subject.task === t.id && a.rule === 'slice-memory-warning')), 'no slice-memory-warning alert for every task')}`);

const history = await api('/v1/history?series=gpu_memory_used_bytes&gpu=0&since=10m');
say(`\nHistory: gpu_memory_used_bytes of GPU 0 over the last 10 minutes: ${history.points.length} points at ${history.step} s ${check(history.points.length > 0, 'no history points')}`);

writeFileSync(join(out, 'monitor.json'), JSON.stringify({ dry, tasks: tasks.map((t) => t.id), slices, gpus, alerts, historyPoints: history.points.length, failures }, null, 1));
if (failures.length > 0) say(`\nFAILED checks:\n${failures.map((f) => `- ${f}`).join('\n')}`);
else say('\nAll checks passed.');
writeFileSync(join(out, 'monitor.md'), `${lines.join('\n')}\n`);
process.stdout.write(`${lines.join('\n')}\n`);
process.exit(failures.length > 0 ? 1 : 0);
