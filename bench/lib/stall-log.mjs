// Loaded with `node --import` into a process the start benchmark watches (START_BENCH_STALLS):
// every 100 ms in which its event loop stalled over 20 ms, or the garbage collector ran, it
// appends "epoch-ms longest-stall-ms gc-ms major-gc-ms longest-gc-pause-ms" to the file
// START_BENCH_STALL_FILE names (major: full mark-compact collections). Plain JavaScript: the daemon runs compiled code, without tsx.
// What ran: every timer or immediate callback (setTimeout, setInterval, setImmediate) that held
// the loop for 10 ms or more is appended to the same file's `.slow` sibling as
// "epoch-ms-at-its-end duration-ms kind function-name first-line-of-its-source" (the callback's
// name and source are read only when it was slow: nothing is paid on the fast path), and so is
// every outermost EventEmitter emit (I/O: a socket's data, a child's pipe, a worker's message)
// as "... emit <emitter's class>:<event> -".
import { EventEmitter } from 'node:events';
import { appendFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { constants, monitorEventLoopDelay, performance, PerformanceObserver } from 'node:perf_hooks';

const file = process.env['START_BENCH_STALL_FILE'];
const SLOW_MS = 10;

/** The callback `fn` wrapped so that a run of it over SLOW_MS is written down. */
function timed(kind, fn, slowFile) {
  if (typeof fn !== 'function') return fn;
  return function (...args) {
    const t0 = performance.now();
    try {
      return fn.apply(this, args);
    } finally {
      const ms = performance.now() - t0;
      if (ms >= SLOW_MS) {
        const src = String(fn).replace(/\s+/g, ' ').slice(0, 100);
        appendFileSync(slowFile, `${Date.now()} ${ms.toFixed(1)} ${kind} ${fn.name || '-'} ${src}\n`);
      }
    }
  };
}

if (file) {
  const slowFile = `${file}.slow`;
  for (const kind of ['setTimeout', 'setInterval', 'setImmediate']) {
    const original = globalThis[kind];
    const wrapped = function (fn, ...rest) {
      return original.call(this, timed(kind, fn, slowFile), ...rest);
    };
    // util.promisify(setTimeout) and friends keep working.
    if (original[promisify.custom]) wrapped[promisify.custom] = original[promisify.custom];
    globalThis[kind] = wrapped;
  }
  const emit = EventEmitter.prototype.emit;
  let depth = 0;
  EventEmitter.prototype.emit = function (event, ...args) {
    if (depth > 0) return emit.call(this, event, ...args);
    depth += 1;
    const t0 = performance.now();
    try {
      return emit.call(this, event, ...args);
    } finally {
      depth -= 1;
      const ms = performance.now() - t0;
      if (ms >= SLOW_MS) appendFileSync(slowFile, `${Date.now()} ${ms.toFixed(1)} emit ${this?.constructor?.name ?? '?'}:${String(event)} -\n`);
    }
  };
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
