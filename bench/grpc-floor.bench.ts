// The floor under the device plugin's Allocate (issue 18 budget: p99 <= 5 ms): a grpc-js unary
// call that does nothing (DevicePlugin.GetDevicePluginOptions answering {}), client in this
// process and server in a child, over a Unix socket, one call at a time as the kubelet calls.
// No plugin, no API server: what the machine and grpc-js cost a round trip. `--opts`: the
// server's and client's channelz off and the client's retries off, to see whether they matter.
// `--server-flags "FLAGS"`: node/V8 flags for the server's process (e.g. "--max-semi-space-size=16"
// or "--single-threaded-gc"); `--compare "FLAGS"`: a second server with those flags, called in
// turns with the first (the order swapped every call), so both see the same machine.
// Where the tail comes from: both processes record their garbage collections (perf_hooks 'gc'
// entries, on the shared clock of performance.timeOrigin), and each call slower than 1 ms is
// put in one class: it overlapped a collection in the server, one in this (client) process, or
// neither (the machine's scheduling, the event loops, grpc-js itself). The kubelet's client is
// Go, so the client's own collections are this bench's cost, not the plugin's.
// Usage: node --import tsx bench/grpc-floor.bench.ts [--opts] [--gap-ms 0,10] [--rounds 3] [--calls 1000] [--server-flags F] [--compare F]
import { credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { devicePluginProtos } from '../src/k8s/deviceplugin/protos.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const OPTS = args.includes('--opts');
/**
 * `--gap-ms N[,M...]`: a pause of N ms before each call (0: back to back), as the Kubernetes
 * benches pause between a pod's calls; several values: each server is called with each pause in
 * turns (one row each), so they see the same machine.
 */
const GAPS = opt('--gap-ms', '0').split(',').map(Number);
const SLOW_MS = 1;

/** [start, end] of each collection in this process, in ms of the shared epoch clock. */
function recordGcs(): [number, number][] {
  const gcs: [number, number][] = [];
  const origin = performance.timeOrigin;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcs.push([origin + e.startTime, origin + e.startTime + e.duration]);
  }).observe({ entryTypes: ['gc'] });
  return gcs;
}

const serverAt = args.indexOf('--server');
if (serverAt >= 0) {
  const gcs = recordGcs();
  const server = new Server(OPTS ? { 'grpc.enable_channelz': 0 } : {});
  server.addService((devicePluginProtos().devicePlugin as unknown as { service: never }).service, {
    GetDevicePluginOptions: (_call: unknown, callback: (e: null, r: unknown) => void) => callback(null, {}),
  } as never);
  server.bindAsync(`unix:${args[serverAt + 1] ?? ''}`, ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    process.stdout.write('ready\n');
  });
  // `gcs` on stdin: the collections since the last ask, as one JSON line.
  for await (const line of createInterface({ input: process.stdin })) {
    if (line === 'gcs') process.stdout.write(`${JSON.stringify(gcs.splice(0))}\n`);
  }
  server.forceShutdown();
} else {
  const ROUNDS = Number(opt('--rounds', '3'));
  const CALLS = Number(opt('--calls', '1000'));
  const dir = mkdtempSync(join(tmpdir(), 'gs-grpc-floor-'));
  const configs = [opt('--server-flags', ''), ...(args.includes('--compare') ? [opt('--compare', '')] : [])];
  const clientGcs = recordGcs();
  const servers = await Promise.all(configs.map(async (flags, s) => {
    const sock = join(dir, `floor-${s}.sock`);
    const nodeFlags = flags.split(' ').filter((f) => f !== '');
    const child: ChildProcess = spawn(process.execPath, [...nodeFlags, '--import', 'tsx', fileURLToPath(import.meta.url), '--server', sock, ...(OPTS ? ['--opts'] : [])], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    await lines.next(); // ready
    const Ctor = devicePluginProtos().devicePlugin;
    const client = new Ctor(`unix:${sock}`, credentials.createInsecure(), OPTS ? { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 } : {}) as unknown as Record<string, (req: unknown, o: unknown, cb: (e: unknown) => void) => void>;
    const call = (): Promise<void> => new Promise((resolve, reject) => client['GetDevicePluginOptions']!.call(client, {}, { deadline: Date.now() + 20_000 }, (e) => (e ? reject(e as Error) : resolve())));
    const gcs = async (): Promise<[number, number][]> => {
      child.stdin!.write('gcs\n');
      return JSON.parse((await lines.next()).value as string) as [number, number][];
    };
    return { name: flags === '' ? 'server, default flags' : `server ${flags}`, child, client, call, gcs };
  }));
  const q = (s: number[], p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  for (let i = 0; i < 2000; i++) for (const s of servers) await s.call(); // warm-up: the JIT's tiers in both processes
  // Each server with each pause: a row each, called in turns.
  const variants = servers.flatMap((s, server) => GAPS.map((gap) => ({ ...s, server, gap, name: GAPS.length > 1 || gap > 0 ? `${s.name}, ${gap} ms pause before each call` : s.name })));
  const overlaps = (gcs: [number, number][], a: number, b: number): boolean => gcs.some(([s, e]) => s < b && e > a);
  console.log(`grpc-js unary no-op over a Unix socket, two processes${OPTS ? ', channelz and retries off' : ''}; ms; calls over ${SLOW_MS} ms by what they overlapped`);
  console.log('| server | round | p50 | p99 | max | calls > 1 ms | of which: server GC | client GC | neither | server GCs (ms) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const pooled = variants.map(() => [] as number[]);
  for (let r = 0; r < ROUNDS; r++) {
    const spans = variants.map(() => [] as [number, number][]);
    await Promise.all(servers.map((s) => s.gcs())); // forget the warm-up's and the last round's
    clientGcs.splice(0);
    for (let i = 0; i < CALLS; i++) {
      const order = i % 2 === 0 ? variants.map((_, k) => k) : variants.map((_, k) => k).reverse();
      for (const k of order) {
        const v = variants[k]!;
        if (v.gap > 0) await new Promise((resolve) => setTimeout(resolve, v.gap));
        const a = performance.timeOrigin + performance.now();
        await v.call();
        spans[k]!.push([a, performance.timeOrigin + performance.now()]);
      }
    }
    const gcsOf = await Promise.all(servers.map((s) => s.gcs()));
    for (const [k, s] of variants.entries()) {
      const serverGcs = gcsOf[s.server]!;
      const t = spans[k]!.map(([a, b]) => b - a);
      pooled[k]!.push(...t);
      const slow = spans[k]!.filter(([a, b]) => b - a > SLOW_MS);
      const bySrv = slow.filter(([a, b]) => overlaps(serverGcs, a, b)).length;
      const byCli = slow.filter(([a, b]) => !overlaps(serverGcs, a, b) && overlaps(clientGcs, a, b)).length;
      const gcMs = serverGcs.reduce((sum, [a, b]) => sum + b - a, 0);
      t.sort((x, y) => x - y);
      console.log(`| ${s.name} | ${r + 1} | ${q(t, 0.5).toFixed(3)} | ${q(t, 0.99).toFixed(3)} | ${(t[t.length - 1] ?? NaN).toFixed(3)} | ${slow.length} | ${bySrv} | ${byCli} | ${slow.length - bySrv - byCli} | ${serverGcs.length} (${gcMs.toFixed(1)}) |`);
    }
  }
  for (const [k, s] of variants.entries()) {
    const t = pooled[k]!.sort((x, y) => x - y);
    console.log(`${s.name}: all ${t.length} calls p50 ${q(t, 0.5).toFixed(3)} ms, p99 ${q(t, 0.99).toFixed(3)} ms`);
  }
  for (const s of servers) {
    (s.client as unknown as { close: () => void }).close();
    s.child.kill();
  }
  rmSync(dir, { recursive: true, force: true });
}
