// When does grpc-js put a unary answer on the socket, against work the handler schedules "after
// the answer"? (Session 25: the device plugin's pod patch, started with setImmediate right after
// Allocate's callback, made the kubelet wait for it.) A server in a child process answers a no-op
// call, then schedules WORK ms of busy work: not at all, with setImmediate, or with setTimeout(0);
// the client (this process) times each call after a short pause, the servers called in turns.
// If the answer waits for the work, that way's latency carries it.
// Usage: node --import tsx bench/grpc-after-answer.bench.ts [--calls 300] [--work-ms 3]
import { credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { devicePluginProtos } from '../src/k8s/deviceplugin/protos.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const WAYS = ['none', 'setImmediate', 'setTimeout(0)'] as const;
type Way = (typeof WAYS)[number];

const serverAt = args.indexOf('--server');
if (serverAt >= 0) {
  const way = args[serverAt + 1] as Way;
  const workMs = Number(args[serverAt + 3]);
  const work = (): void => {
    const t0 = performance.now();
    while (performance.now() - t0 < workMs); // busy, as a patch's request building is
  };
  const server = new Server();
  server.addService((devicePluginProtos().devicePlugin as unknown as { service: never }).service, {
    GetDevicePluginOptions: (_call: unknown, callback: (e: null, r: unknown) => void) => {
      callback(null, {});
      if (way === 'setImmediate') setImmediate(work);
      else if (way === 'setTimeout(0)') setTimeout(work, 0);
    },
  } as never);
  server.bindAsync(`unix:${args[serverAt + 2] ?? ''}`, ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    process.stdout.write('ready\n');
  });
} else {
  const CALLS = Number(opt('--calls', '300'));
  const WORK_MS = Number(opt('--work-ms', '3'));
  const dir = mkdtempSync(join(tmpdir(), 'gs-grpc-after-'));
  const servers = await Promise.all(WAYS.map(async (way, k) => {
    const sock = join(dir, `s${k}.sock`);
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--server', way, sock, String(WORK_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    await createInterface({ input: child.stdout! })[Symbol.asyncIterator]().next(); // ready
    const Ctor = devicePluginProtos().devicePlugin;
    const client = new Ctor(`unix:${sock}`, credentials.createInsecure()) as unknown as Record<string, (req: unknown, o: unknown, cb: (e: unknown) => void) => void> & { close: () => void };
    const call = (): Promise<void> => new Promise((resolve, reject) => client['GetDevicePluginOptions']!.call(client, {}, { deadline: Date.now() + 20_000 }, (e) => (e ? reject(e as Error) : resolve())));
    return { way, child, client, call, times: [] as number[] };
  }));
  for (let i = 0; i < 200; i++) for (const s of servers) await s.call(); // warm-up
  for (let i = 0; i < CALLS; i++) {
    for (const s of i % 2 === 0 ? servers : [...servers].reverse()) {
      await new Promise((resolve) => setTimeout(resolve, 2 * WORK_MS + 2)); // the last call's work done
      const t0 = performance.now();
      await s.call();
      s.times.push(performance.now() - t0);
    }
  }
  const q = (s: number[], p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  console.log(`a no-op unary call whose handler schedules ${WORK_MS} ms of work after calling back; ${CALLS} calls a way, in turns; ms`);
  console.log('| work after the answer | p50 | p90 | p99 |');
  console.log('| --- | --- | --- | --- |');
  for (const s of servers) {
    const t = s.times.sort((a, b) => a - b);
    console.log(`| ${s.way} | ${q(t, 0.5).toFixed(3)} | ${q(t, 0.9).toFixed(3)} | ${q(t, 0.99).toFixed(3)} |`);
    s.client.close();
    s.child.kill();
  }
  rmSync(dir, { recursive: true, force: true });
}
