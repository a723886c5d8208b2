// The daemon's log written synchronously (issue 17: a crash lost its last lines) against pino's
// default asynchronous destination: the cost per line as the caller sees it, and what a SIGKILL
// right after a burst leaves. Interleaved rounds, medians. The log goes to a file and to a pipe
// (a file: `2>daemon.log`; a pipe: systemd's journal, a supervisor).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';

const LINES = 20_000;
const ROUNDS = 7;
const dir = mkdtempSync(join(tmpdir(), 'gs-log-bench-'));

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

/** Microseconds per logged line, the logging calls only (what the daemon's request path pays). */
function perLine(sync: boolean, round: number): number {
  const fd = openSync(join(dir, `log-${sync}-${round}`), 'w');
  const dest = pino.destination({ dest: fd, sync });
  const log = pino({ level: 'info' }, dest);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < LINES; i++) log.info({ task: 'a1b2c3d4e5f6', command: ['python', 'train.py'], priority: 500 }, 'task submitted');
  const us = Number(process.hrtime.bigint() - t0) / 1000 / LINES;
  dest.flushSync();
  closeSync(fd);
  return us;
}

/** Lines that reached a pipe when the writer was SIGKILLed right after logging them. */
function survivors(sync: boolean): Promise<number> {
  const script = `
    import { pino } from 'pino';
    const log = pino({ level: 'info' }, pino.destination({ dest: 2, sync: ${sync} }));
    for (let i = 0; i < ${LINES}; i++) log.info({ i }, 'line');
    process.kill(process.pid, 'SIGKILL');`;
  return new Promise((resolve) => {
    const c = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'ignore', 'pipe'], cwd: process.cwd() });
    let text = '';
    c.stderr.on('data', (d: Buffer) => (text += d.toString()));
    c.on('close', () => resolve(text.split('\n').filter((l) => l.startsWith('{')).length));
  });
}

const times: Record<'async' | 'sync', number[]> = { async: [], sync: [] };
for (let r = 0; r < ROUNDS; r++) {
  times.async.push(perLine(false, r));
  times.sync.push(perLine(true, r));
}
const kept = { async: await survivors(false), sync: await survivors(true) };
console.log(`log lines to a file, ${LINES} per round, ${ROUNDS} interleaved rounds (median µs per line, as the caller waits):`);
console.log(`  pino default (async)   ${median(times.async).toFixed(2)} µs`);
console.log(`  sync (the daemon now)  ${median(times.sync).toFixed(2)} µs`);
console.log(`${LINES} lines then SIGKILL, to a pipe: async kept ${kept.async}, sync kept ${kept.sync}`);
rmSync(dir, { recursive: true, force: true });
