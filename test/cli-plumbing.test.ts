/**
 * CLI plumbing without a daemon: global options before the command, run's own exit statuses
 * (125), request timeouts and the keepalive of a stream against a fake daemon that stops
 * answering, and help lines that state a default once.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Option } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { describeOption, withoutGlobalOptions } from '../src/cli/main.js';
import { resolveTimeouts } from '../src/cli/client.js';
import { REPO_ROOT, runCli } from './helpers/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'gpushare-plumbing-'));
const servers: Server[] = [];
afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

/** The CLI without blocking this process (the fake daemons below answer from it). */
function cli(args: readonly string[]): Promise<{ status: number | null; stderr: string; ms: number }> {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('GPUSHARE_')) delete env[k];
  const t0 = Date.now();
  const c = spawn(process.execPath, [`${REPO_ROOT}bin/gpushare.js`, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  c.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => c.once('close', (status) => resolve({ status, stderr, ms: Date.now() - t0 })));
}

async function fakeDaemon(name: string, handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const path = join(dir, name);
  const server = createServer(handle);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return path;
}

describe('options before the command', () => {
  it('strips the global options before the command name, and only those', () => {
    expect(withoutGlobalOptions(['node', 'gs', '--host', '/s', '--timeout=3', 'ps', '--host', '/t'])).toEqual(['node', 'gs', 'ps', '--host', '/t']);
    expect(withoutGlobalOptions(['node', 'gs', '--version'])).toEqual(['node', 'gs', '--version']);
  });

  it.each([
    [['--host', '/nonexistent/a.sock', 'ps']],
    [['--host=/nonexistent/a.sock', 'ps']],
    [['ps', '--host', '/nonexistent/a.sock']],
    [['--host', '/nonexistent/b.sock', 'ps', '--host', '/nonexistent/a.sock']],
    [['--host', '/nonexistent/a.sock', 'tenant', 'ls']],
  ])('%j asks the daemon named', (args) => {
    const r = runCli(args, { GPUSHARE_HOST: '/nonexistent/env.sock' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/cannot reach a gpushare daemon at \/nonexistent\/a\.sock \(ENOENT\)/);
  });

  it('refuses one that the command does not take, naming both', () => {
    const r = runCli(['--host', '/nonexistent/a.sock', 'info']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/`gpushare info` takes no --host \(given before the command\)/);
  });
});

describe('run exit statuses', () => {
  it('exits 125 for its own failures: bad usage, no daemon', () => {
    const usage = runCli(['run', '--frobnicate', '--', 'true']);
    expect(usage.status).toBe(125);
    expect(usage.stderr).toMatch(/unknown option '--frobnicate'/);
    const unreachable = runCli(['--host', '/nonexistent/a.sock', 'run', '--', 'true']);
    expect(unreachable.status).toBe(125);
    expect(unreachable.stderr).toMatch(/GS_ERR_DAEMON_UNREACHABLE/);
    expect(runCli(['run', '--help']).status).toBe(0);
  });
});

describe('timeouts', () => {
  it('parses --timeout: seconds, 0 for no limit, bad values refused', () => {
    expect(resolveTimeouts(undefined)).toEqual({ connectMs: 5000, responseMs: 30000 });
    expect(resolveTimeouts('0.5')).toEqual({ connectMs: 500, responseMs: 500 });
    expect(resolveTimeouts('0')).toEqual({ connectMs: 5000, responseMs: 0 });
    expect(() => resolveTimeouts('-1')).toThrow(/not a number of seconds/);
    const r = runCli(['ps', '--timeout', 'soon']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/--timeout \(GPUSHARE_TIMEOUT\) "soon" is not a number of seconds/);
  });

  it('gives up on a daemon that accepts but never answers, naming it', async () => {
    const path = await fakeDaemon('stuck.sock', () => undefined);
    const r = await cli(['--timeout', '0.5', 'ps', '--host', path]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`gpushare: the daemon at ${path} did not answer GET /v1/tasks within 0.5 s (--timeout, GPUSHARE_TIMEOUT); is it stuck or overloaded? [GS_ERR_DAEMON_UNREACHABLE]`);
    expect(r.ms).toBeLessThan(5000);
  });

  it('ends a silent stream whose daemon stops answering (logs -f), but not for silence alone', async () => {
    let stalled = false;
    const path = await fakeDaemon('silent.sock', (req, res) => {
      if (stalled) return; // from now on nothing is answered: a stuck daemon
      if (req.url === '/v1/tasks/abc') {
        res.setHeader('content-type', 'application/json').end(JSON.stringify({ id: 'abc123456789' }));
      } else if (req.url?.startsWith('/v1/tasks/abc123456789/logs')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write(`${JSON.stringify({ stream: 'stdout', data: 'hello\n' })}\n`);
      } else if (req.url === '/v1/gpus') {
        // The first keepalive is answered (a quiet task is no fault); the daemon then gets stuck.
        res.setHeader('content-type', 'application/json').end('{"gpus":[]}');
        stalled = true;
      } else res.writeHead(404).end();
    });
    const r = await cli(['logs', '-f', 'abc', '--host', path, '--timeout', '0.5']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`the daemon at ${path} did not answer GET /v1/gpus within 0.5 s`);
    expect(r.stderr).toContain('(a keepalive while the stream was silent)');
    expect(r.ms).toBeGreaterThanOrEqual(1000);
  });
});

describe('help', () => {
  it('states a default once: a description that says it keeps its own', () => {
    expect(describeOption(new Option('-n, --interval <seconds>', 'seconds between refreshes (default 2)').default('2'))).toBe('seconds between refreshes (default 2)');
    expect(describeOption(new Option('--count <n>', 'how many').default('3'))).toBe('how many (default: "3")');
    expect(describeOption(new Option('--mode <m>', 'the mode (default auto)').default('auto').choices(['auto', 'on']))).toBe('the mode (default auto) (choices: "auto", "on")');
  });

  it('no --help of any command says "(default X) (default: X)"', () => {
    const helps = JSON.parse(readFileSync(new URL('./fixtures/cli-help.json', import.meta.url), 'utf8')) as Record<string, string>;
    for (const [command, text] of Object.entries(helps)) {
      expect({ command, twice: /\(default[^)]*\)\s+\(default: /.test(text.replace(/\s+/g, ' ')) }).toEqual({ command, twice: false });
    }
  });
});
