/**
 * `gpushare run` sends an Idempotency-Key and, when the daemon drops the connection mid-request
 * (a restart), retries with the same key. The daemon here is a stand-in that drops the first
 * submission after reading it, as a daemon killed between taking a task and answering would.
 */
import { spawn } from 'node:child_process';
import { createServer, type IncomingMessage } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/cli.js';

const seen: { key: string | undefined; body: string }[] = [];
const server = createServer((req: IncomingMessage, res) => {
  let body = '';
  req.on('data', (d: Buffer) => (body += d.toString()));
  req.on('end', () => {
    seen.push({ key: req.headers['idempotency-key'] as string | undefined, body });
    if (seen.length === 1) {
      req.socket.destroy(); // taken, then gone before the answer
      return;
    }
    res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'abcdef012345', state: 'queued' }));
  });
});
let url = '';

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  url = `http://127.0.0.1:${typeof a === 'object' && a !== null ? a.port : 0}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

it('retries a dropped submission with the same Idempotency-Key', async () => {
  const env = { ...process.env, GPUSHARE_HOST: url, GPUSHARE_TOKEN: 't' };
  const r = await new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const c = spawn(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, 'run', '-d', '--gpus', '0', '--', 'true'], { env });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  expect(r.stderr).toBe('');
  expect(r.stdout).toBe('abcdef012345\n');
  expect(seen).toHaveLength(2);
  expect(seen[0]?.key).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  expect(seen[1]).toEqual(seen[0]);
});
