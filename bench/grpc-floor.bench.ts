// The floor under the device plugin's Allocate (issue 18 budget: p99 <= 5 ms): a grpc-js unary
// call that does nothing (DevicePlugin.GetDevicePluginOptions answering {}), client in this
// process and server in a child, over a Unix socket, one call at a time as the kubelet calls.
// No plugin, no API server: what the machine and grpc-js cost a round trip. `--opts`: the
// server's and client's channelz off and the client's retries off, to see whether they matter.
// Usage: node --import tsx bench/grpc-floor.bench.ts [--opts] [--rounds 3] [--calls 1000]
import { credentials, Server, ServerCredentials } from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { devicePluginProtos } from '../src/k8s/deviceplugin/protos.js';

const args = process.argv.slice(2);
const opt = (name: string, fallback: string): string => {
  const i = args.indexOf(name);
  return i >= 0 ? (args[i + 1] ?? fallback) : fallback;
};
const OPTS = args.includes('--opts');
const serverAt = args.indexOf('--server');
if (serverAt >= 0) {
  const server = new Server(OPTS ? { 'grpc.enable_channelz': 0 } : {});
  server.addService((devicePluginProtos().devicePlugin as unknown as { service: never }).service, {
    GetDevicePluginOptions: (_call: unknown, callback: (e: null, r: unknown) => void) => callback(null, {}),
  } as never);
  server.bindAsync(`unix:${args[serverAt + 1] ?? ''}`, ServerCredentials.createInsecure(), (e) => {
    if (e) throw e;
    process.stdout.write('ready\n');
  });
} else {
  const ROUNDS = Number(opt('--rounds', '3'));
  const CALLS = Number(opt('--calls', '1000'));
  const dir = mkdtempSync(join(tmpdir(), 'gs-grpc-floor-'));
  const sock = join(dir, 'floor.sock');
  const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--server', sock, ...(OPTS ? ['--opts'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const Ctor = devicePluginProtos().devicePlugin;
  const client = new Ctor(`unix:${sock}`, credentials.createInsecure(), OPTS ? { 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 } : {}) as unknown as Record<string, (req: unknown, o: unknown, cb: (e: unknown) => void) => void>;
  const call = (): Promise<void> => new Promise((resolve, reject) => client['GetDevicePluginOptions']!.call(client, {}, { deadline: Date.now() + 20_000 }, (e) => (e ? reject(e as Error) : resolve())));
  const q = (s: number[], p: number): number => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  for (let i = 0; i < 300; i++) await call(); // warm-up
  console.log(`grpc-js unary no-op over a Unix socket, two processes${OPTS ? ', channelz and retries off' : ''}; ms`);
  console.log('| round | p50 | p99 | max |');
  console.log('| --- | --- | --- | --- |');
  for (let r = 0; r < ROUNDS; r++) {
    const t: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await call();
      t.push(performance.now() - t0);
    }
    t.sort((a, b) => a - b);
    console.log(`| ${r + 1} | ${q(t, 0.5).toFixed(3)} | ${q(t, 0.99).toFixed(3)} | ${(t[t.length - 1] ?? NaN).toFixed(3)} |`);
  }
  (client as unknown as { close: () => void }).close();
  child.kill();
  rmSync(dir, { recursive: true, force: true });
}
