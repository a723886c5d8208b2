// Loaded with `node --import` into a process the start benchmark watches (START_BENCH_STALLS):
// every 100 ms in which its event loop stalled over 20 ms, or the garbage collector ran, it
// appends "epoch-ms longest-stall-ms gc-ms major-gc-ms longest-gc-pause-ms" to the file
// START_BENCH_STALL_FILE names (major: full mark-compact collections). Plain JavaScript: the daemon runs compiled code, without tsx.
import { appendFileSync } from 'node:fs';
import { constants, monitorEventLoopDelay, PerformanceObserver } from 'node:perf_hooks';

const file = process.env['START_BENCH_STALL_FILE'];
if (file) {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  let gcMs = 0;
  // Of which full (mark-compact) collections, and the longest single pause.
  let majorMs = 0;
  let longestGc = 0;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      gcMs += e.duration;
      if (e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorMs += e.duration;
      longestGc = Math.max(longestGc, e.duration);
    }
  }).observe({ entryTypes: ['gc'] });
  setInterval(() => {
    const longest = delay.max / 1e6;
    if (longest > 20 || gcMs > 0) appendFileSync(file, `${Date.now()} ${longest.toFixed(1)} ${gcMs.toFixed(1)} ${majorMs.toFixed(1)} ${longestGc.toFixed(1)}\n`);
    delay.reset();
    gcMs = 0;
    majorMs = 0;
    longestGc = 0;
  }, 100).unref();
}
