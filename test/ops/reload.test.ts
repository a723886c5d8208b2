/**
 * SIGHUP on a real daemon (`gpushare serve` as a child process): the config file read again,
 * tenants' quotas, tokens and the log level applied, keys that take a restart logged by name and
 * left alone, and a bad file refused with the daemon still serving the old config.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '../../src/cli/client.js';
import { REPO_ROOT } from '../helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-reload-'));
const socket = join(dir, 'api.sock');
const configPath = join(dir, 'config.json');
const client = new Client({ kind: 'unix', path: socket });
let daemon: ChildProcess;
let log = '';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined): Promise<T> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (daemon.exitCode !== null || Date.now() > deadline) throw new Error(`${what}: not seen; daemon log:\n${log}`);
    await sleep(50);
  }
}
/** The daemon's JSON log lines with this message, from `from` characters on. */
const logged = (msg: string, from: number): Record<string, unknown>[] =>
  log
    .slice(from)
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l['msg'] === msg || (typeof l['msg'] === 'string' && l['msg'].startsWith(msg)));
type Tenant = { name: string; quota: { gpus: number | null } };
const quotas = async (): Promise<Record<string, number | null>> => Object.fromEntries((await client.json<Tenant[]>('GET', '/v1/tenants')).map((t) => [t.name, t.quota.gpus]));

async function hangup(): Promise<number> {
  const from = log.length;
  daemon.kill('SIGHUP');
  return from;
}

beforeAll(async () => {
  writeFileSync(configPath, JSON.stringify({ tenants: [{ name: 'a', quota: { gpus: 1 } }] }));
  daemon = spawn(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, 'serve', '--backend', 'simulated', '--simulate', '2xH100-80GB', '--state-dir', join(dir, 'state'), '--listen', socket, '--sandbox', 'off', '--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout?.on('data', (b: Buffer) => (log += b.toString()));
  daemon.stderr?.on('data', (b: Buffer) => (log += b.toString()));
  await until('the API', async () => client.json('GET', '/v1/gpus').catch(() => undefined));
});

afterAll(async () => {
  if (daemon.exitCode === null) {
    daemon.kill('SIGTERM');
    await new Promise((r) => daemon.once('close', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('SIGHUP', () => {
  it('applies quotas and the log level, and names what takes a restart', async () => {
    expect(await quotas()).toEqual({ a: 1 });
    writeFileSync(configPath, JSON.stringify({ tenants: [{ name: 'a', quota: { gpus: 2 } }, { name: 'b', quota: { gpus: 1 } }], logLevel: 'debug', policy: 'spread', stateDir: join(dir, 'elsewhere') }));
    const from = await hangup();
    const reloaded = await until('config reloaded', () => logged('config reloaded', from)[0]);
    expect(reloaded['applied']).toEqual(expect.arrayContaining(['tenants', 'logLevel']));
    expect(await quotas()).toEqual({ a: 2, b: 1 });
    const [warned] = logged('config reload:', from);
    expect(warned?.['ignored']).toEqual(['policy']); // --state-dir wins over the file: no change there
    expect(String(warned?.['msg'])).toMatch(/policy changed but take a restart/);
  });

  it('refuses a bad file, keeping the running config and serving on', async () => {
    writeFileSync(configPath, '{"tenants": [{"name": "a", "quota": {"gpus": 5}}], "nope": 1}');
    const from = await hangup();
    const refused = await until('the refusal', () => logged('config reload refused; the running config stays', from)[0]);
    expect(String(refused['problem'])).toMatch(/Unrecognized key.*nope/);
    expect(await quotas()).toEqual({ a: 2, b: 1 });
    expect(daemon.exitCode).toBe(null);
  });
});

describe('SIGHUP and alert rules', () => {
  it('applies new rules and webhooks; refuses a rule that cannot run, naming it, changing nothing', async () => {
    writeFileSync(configPath, JSON.stringify({ tenants: [{ name: 'a', quota: { gpus: 2 } }, { name: 'b', quota: { gpus: 1 } }], alerts: { rules: [{ name: 'gpu-temperature-warning', threshold: 85 }], webhooks: [{ url: 'http://127.0.0.1:9/hook' }] } }));
    let from = await hangup();
    const reloaded = await until('config reloaded', () => logged('config reloaded', from)[0]);
    expect(reloaded['applied']).toEqual(expect.arrayContaining(['alerts']));
    writeFileSync(configPath, JSON.stringify({ tenants: [{ name: 'a', quota: { gpus: 3 } }], alerts: { rules: [{ name: 'my-rule', threshold: 1 }] } }));
    from = await hangup();
    const refused = await until('the refusal', () => logged('config reload refused; the running config stays', from)[0]);
    expect(String(refused['problem'])).toMatch(/alerts\.rules\.0 \(my-rule\): a new rule needs figure, severity/);
    expect(await quotas()).toEqual({ a: 2, b: 1 });
  });
});
