import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { RemoteSession } from '/work/wt/s20-sdk/src/remote/sdk/index.js';
const N = '/work/wt/s20-sdk/build/native';
const key = randomBytes(32).toString('hex');
const w = spawn(`${N}/gpushare-remote-worker`, ['--listen', '127.0.0.1:0'], { env: { ...process.env, GPUSHARE_FAKE_CUDA: process.env.FAKE ?? '{}', GPUSHARE_REMOTE_KEY: key, LD_LIBRARY_PATH: `${N}/fake` }, stdio: ['ignore', 'pipe', 'inherit'] });
const port: number = await new Promise((r) => w.stdout.on('data', (d) => { const m = /listening (\d+)/.exec(String(d)); if (m) r(Number(m[1])); }));
const s = await RemoteSession.connect({ endpoint: `127.0.0.1:${port}`, key });
const m = await s.loadModule('// ptx\n');
const f0 = await s.function(m, 'sleep_0');
for (let r = 0; r < 3; r++) {
let t0 = performance.now();
for (let i = 0; i < 100000; i++) s.launch(f0, 1, 1);
const t1 = performance.now();
await s.synchronize(); console.log('launch encode us', (t1 - t0) / 100, 'launches/s', 100000 / ((performance.now() - t0) / 1000));
t0 = performance.now(); for (let i = 0; i < 20000; i++) await s.synchronize(); console.log('rt us', (performance.now() - t0) / 20000 * 1000);
}
await s.close();
