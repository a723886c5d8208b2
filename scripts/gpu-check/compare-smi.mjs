// Compares `gpushare gpus --json` with nvidia-smi's CSV, field by field, over three rounds taken
// back to back, and prints a Markdown table. Static fields must match exactly; fields that move
// (utilization, power, clocks, temperature) must agree within the stated tolerance in at least
// one round, since the two tools sample at slightly different instants.
import { readFileSync } from 'node:fs';

const [dir, fieldList] = process.argv.slice(2);
const fields = fieldList.split(',');
const MIB = 2 ** 20;
const rounds = [1, 2, 3].map((r) => ({
  smi: readFileSync(`${dir}/smi-gpu-${r}.csv`, 'utf8').trim().split('\n').map((l) => l.split(',').map((s) => s.trim())),
  apps: readFileSync(`${dir}/smi-apps-${r}.csv`, 'utf8').trim().split('\n').filter(Boolean).map((l) => l.split(',').map((s) => s.trim())),
  ours: JSON.parse(readFileSync(`${dir}/gpushare-${r}.json`, 'utf8')),
}));

const exact = (a, b) => String(a) === String(b);
const within = (tol) => (a, b) => Math.abs(Number(a) - Number(b)) <= tol;
const relative = (frac, floor) => (a, b) => Math.abs(Number(a) - Number(b)) <= Math.max(floor, frac * Math.abs(Number(b)));
const REASONS = [[0x1n, 'gpu_idle'], [0x2n, 'applications_clocks_setting'], [0x4n, 'sw_power_cap'], [0x8n, 'hw_slowdown'], [0x10n, 'sync_boost'], [0x20n, 'sw_thermal_slowdown'], [0x40n, 'hw_thermal_slowdown'], [0x80n, 'hw_power_brake_slowdown'], [0x100n, 'display_clock_setting']];
const reasonNames = (hex) => REASONS.filter(([bit]) => (BigInt(hex) & bit) !== 0n).map(([, n]) => n).join('+') || 'none';

/** [nvidia-smi field, our value from a GPU object, how ours maps to smi's units, rule, rule text] */
const checks = [
  ['index', (g) => g.index, exact, 'exact'],
  ['uuid', (g) => g.uuid, exact, 'exact'],
  ['name', (g) => g.name, exact, 'exact'],
  ['memory.total', (g) => Math.round(g.memoryTotalBytes / MIB), within(1), '±1 MiB'],
  ['memory.reserved', (g) => (g.memoryReservedBytes === null ? null : Math.round(g.memoryReservedBytes / MIB)), within(1), '±1 MiB'],
  ['memory.used', (g) => Math.round(g.memoryUsedBytes / MIB), within(2), '±2 MiB'],
  ['memory.free', (g) => Math.round(g.memoryFreeBytes / MIB), within(2), '±2 MiB'],
  ['utilization.gpu', (g) => Math.round(g.utilizationGpu * 100), within(10), '±10 points'],
  ['utilization.memory', (g) => Math.round(g.utilizationMemory * 100), within(10), '±10 points'],
  ['temperature.gpu', (g) => g.temperatureC, within(3), '±3 C'],
  ['power.draw', (g) => g.powerDrawWatts, relative(0.15, 20), '±15% or 20 W'],
  ['enforced.power.limit', (g) => g.powerLimitWatts, within(0.5), '±0.5 W'],
  ['clocks.sm', (g) => g.clockSmMHz, relative(0.1, 30), '±10% or 30 MHz'],
  ['clocks.mem', (g) => g.clockMemoryMHz, within(1), '±1 MHz'],
  ['clocks.max.sm', (g) => g.maxClockSmMHz, exact, 'exact'],
  ['clocks.max.mem', (g) => g.maxClockMemoryMHz, exact, 'exact'],
  ['pci.bus_id', (g) => g.pciBusId, exact, 'exact'],
  ['compute_cap', (g) => g.computeCapability, exact, 'exact'],
  ['mig.mode.current', (g) => ({ enabled: 'Enabled', disabled: 'Disabled', unsupported: '[N/A]' })[g.migMode], exact, 'exact'],
  ['ecc.errors.corrected.volatile.total', (g) => (g.eccErrors === null ? '[N/A]' : g.eccErrors.corrected), exact, 'exact'],
  ['ecc.errors.uncorrected.volatile.total', (g) => (g.eccErrors === null ? '[N/A]' : g.eccErrors.uncorrected), exact, 'exact'],
  ['clocks_event_reasons.active', (g) => (g.clockEventReasons ?? []).join('+') || 'none', (a, b) => a === reasonNames(b), 'same set (any round)'],
];

const rows = [];
let failures = 0;
const gpuCount = rounds[0].smi.length;
for (let gi = 0; gi < gpuCount; gi += 1) {
  for (const [field, pick, rule, ruleText] of checks) {
    const col = fields.indexOf(field);
    const pairs = rounds.map((r) => ({ smi: r.smi[gi][col], ours: pick(r.ours[gi]) }));
    const ok = pairs.some((p) => p.ours !== null && p.ours !== undefined && rule(p.ours, p.smi));
    if (!ok) failures += 1;
    const shown = pairs[0];
    rows.push(`| ${gi} | ${field} | ${shown.smi} | ${shown.ours} | ${ruleText} | ${ok ? 'yes' : '**NO**'} |`);
  }
  // Processes: the same PIDs with the same memory (nvidia-smi prints MiB).
  for (const [ri, r] of rounds.entries()) {
    const uuid = r.ours[gi].uuid;
    const smiApps = r.apps.filter((a) => a[0] === uuid).map((a) => `${a[1]}:${a[2]}`).sort();
    const ourApps = r.ours[gi].processes.map((p) => `${p.pid}:${p.memoryBytes === null ? '[N/A]' : Math.round(p.memoryBytes / MIB)}`).sort();
    const ok = smiApps.join(' ') === ourApps.join(' ');
    if (ri === 0 || !ok) {
      if (!ok) failures += 1;
      rows.push(`| ${gi} | processes (round ${ri + 1}) | ${smiApps.join(' ') || 'none'} | ${ourApps.join(' ') || 'none'} | same pid:MiB set | ${ok ? 'yes' : '**NO**'} |`);
    }
  }
}
console.log('| GPU | field | nvidia-smi | gpushare | rule | match |');
console.log('| --- | --- | --- | --- | --- | --- |');
console.log(rows.join('\n'));
console.log(`\n${rows.length - failures} matched, ${failures} did not`);
process.exit(failures === 0 ? 0 : 1);
