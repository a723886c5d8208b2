/**
 * Every bad request is refused with a 4xx, a stable code and a message naming what is wrong,
 * and changes nothing: tasks, events and tenants are the same after it. Refused changes (not
 * reads) leave exactly one audit record with the refusal's code.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecordBody, ErrorBody } from '../../src/contract/schemas.js';
import { Harness } from './harness.js';

const h = new Harness();
let ended = '';
let live = '';

beforeAll(async () => {
  await h.start();
  expect((await h.run(['tenant', 'create', 'busy', '--gpus', '1', '--mem', '10Gi'])).status).toBe(0);
  live = await h.detach(['--tenant', 'busy', '--gpus', '0', '--', 'sleep', '30']);
  ended = await h.detach(['--gpus', '0', '--', 'true']);
  await h.waitFor(ended);
  await h.waitFor(live, (t) => t.state === 'running');
});
afterAll(async () => {
  await h.cleanup();
});

function send(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; body: ErrorBody }> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': contentType };
    const req = request({ socketPath: h.socket, path, method, headers }, (res) => {
      let text = '';
      res.on('data', (b: Buffer) => (text += b.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as ErrorBody }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body));
  });
}

/** Everything a request could change, as the API shows it. */
async function state(): Promise<unknown> {
  return {
    tasks: await h.client.json('GET', '/v1/tasks?all=1'),
    events: await h.client.json('GET', '/v1/events?limit=10000'),
    tenants: await h.client.json('GET', '/v1/tenants'),
  };
}

interface Case {
  readonly name: string;
  readonly method: string;
  readonly path: string | (() => string);
  readonly body?: unknown;
  readonly contentType?: string;
  readonly status: number;
  readonly code: string;
  readonly message: RegExp;
}

const INVALID = 'GS_ERR_INVALID_ARGUMENT';
const cases: Case[] = [
  // submit
  { name: 'submit: command not an array', method: 'POST', path: '/v1/tasks', body: { command: 'true' }, status: 400, code: INVALID, message: /command: .*expected array/ },
  { name: 'submit: env name', method: 'POST', path: '/v1/tasks', body: { command: ['true'], env: { '1X': 'a' } }, status: 400, code: INVALID, message: /env\.1X: "1X" is not a variable name/ },
  { name: 'submit: tenant name', method: 'POST', path: '/v1/tasks', body: { command: ['true'], gpus: 0, tenant: 'a b' }, status: 400, code: INVALID, message: /"a b" is not a tenant name/ },
  { name: 'submit: gpus', method: 'POST', path: '/v1/tasks', body: { command: ['true'], gpus: -1 }, status: 400, code: INVALID, message: /gpus/ },
  { name: 'submit: over quota', method: 'POST', path: '/v1/tasks', body: { command: ['true'], tenant: 'busy', memory: '20Gi', cwd: '/' }, status: 403, code: 'GS_ERR_QUOTA_EXCEEDED', message: /exceeds tenant "busy"'s quota, so it could never start: asks 20 GiB of GPU memory; 10 GiB of its memory quota is left/ },
  { name: 'submit: wrong content type', method: 'POST', path: '/v1/tasks', body: 'command=true', contentType: 'application/x-www-form-urlencoded', status: 415, code: INVALID, message: /Unsupported Media Type/i },
  { name: 'submit: malformed JSON', method: 'POST', path: '/v1/tasks', body: '{"command": [', status: 400, code: INVALID, message: /JSON/ },
  // kill
  { name: 'kill: unknown task', method: 'POST', path: '/v1/tasks/abcdef012345/kill', body: {}, status: 404, code: 'GS_ERR_NOT_FOUND', message: /no task "abcdef012345"/ },
  { name: 'kill: not a task id', method: 'POST', path: '/v1/tasks/NOT-HEX/kill', body: {}, status: 404, code: 'GS_ERR_NOT_FOUND', message: /task ids are lowercase hex/ },
  { name: 'kill: bad signal', method: 'POST', path: () => `/v1/tasks/${live}/kill`, body: { signal: 'SIGFOO' }, status: 400, code: INVALID, message: /"SIGFOO" is not a signal/ },
  { name: 'kill: negative grace', method: 'POST', path: () => `/v1/tasks/${live}/kill`, body: { graceSeconds: -1 }, status: 400, code: INVALID, message: /graceSeconds/ },
  { name: 'kill: unknown field', method: 'POST', path: () => `/v1/tasks/${live}/kill`, body: { force: true }, status: 400, code: INVALID, message: /force/ },
  { name: 'kill: already ended', method: 'POST', path: () => `/v1/tasks/${ended}/kill`, body: {}, status: 409, code: 'GS_ERR_CONFLICT', message: /already ended \(exited\)/ },
  // tenants
  { name: 'tenant: bad name', method: 'POST', path: '/v1/tenants', body: { name: '-x' }, status: 400, code: INVALID, message: /"-x" is not a tenant name/ },
  { name: 'tenant: no name', method: 'POST', path: '/v1/tenants', body: { quota: {} }, status: 400, code: INVALID, message: /name/ },
  { name: 'tenant: exists', method: 'POST', path: '/v1/tenants', body: { name: 'busy' }, status: 409, code: 'GS_ERR_CONFLICT', message: /tenant "busy" already exists/ },
  { name: 'tenant: negative GPUs', method: 'POST', path: '/v1/tenants', body: { name: 'n1', quota: { gpus: -1 } }, status: 400, code: INVALID, message: /quota\.gpus: -1 is not a GPU count/ },
  { name: 'tenant: ambiguous memory', method: 'POST', path: '/v1/tenants', body: { name: 'n2', quota: { memory: '4096m' } }, status: 400, code: INVALID, message: /quota\.memory: unit "m" in "4096m" is ambiguous/ },
  { name: 'tenant: memory as percent', method: 'POST', path: '/v1/tenants', body: { name: 'n3', quota: { memory: '50%' } }, status: 400, code: INVALID, message: /not a percentage/ },
  { name: 'tenant: every bad field at once', method: 'POST', path: '/v1/tenants', body: { name: 'n4', quota: { gpus: 1.5, compute: 'lots' } }, status: 400, code: INVALID, message: /quota\.gpus: .*; quota\.compute: "lots" is not a compute quota/ },
  { name: 'tenant: unknown quota field', method: 'POST', path: '/v1/tenants', body: { name: 'n5', quota: { cpus: 4 } }, status: 400, code: INVALID, message: /cpus/ },
  { name: 'set-quota: unknown tenant', method: 'PATCH', path: '/v1/tenants/nobody', body: { quota: { gpus: 1 } }, status: 404, code: 'GS_ERR_NOT_FOUND', message: /no tenant "nobody"/ },
  { name: 'set-quota: no quota', method: 'PATCH', path: '/v1/tenants/busy', body: {}, status: 400, code: INVALID, message: /quota/ },
  { name: 'set-quota: bad compute', method: 'PATCH', path: '/v1/tenants/busy', body: { quota: { compute: '-5' } }, status: 400, code: INVALID, message: /quota\.compute: "-5" is not a compute quota/ },
  { name: 'delete: unknown tenant', method: 'DELETE', path: '/v1/tenants/nobody', status: 404, code: 'GS_ERR_NOT_FOUND', message: /no tenant "nobody"/ },
  { name: 'delete: tenant with a live task', method: 'DELETE', path: '/v1/tenants/busy', status: 409, code: 'GS_ERR_CONFLICT', message: /has 1 queued or running task/ },
  // reads
  { name: 'list: bad flag', method: 'GET', path: '/v1/tasks?all=maybe', status: 400, code: INVALID, message: /all/ },
  { name: 'list: unknown query', method: 'GET', path: '/v1/tasks?al=1', status: 400, code: INVALID, message: /al/ },
  { name: 'logs: bad stream', method: 'GET', path: () => `/v1/tasks/${ended}/logs?stream=stdin`, status: 400, code: INVALID, message: /stream/ },
  { name: 'events: negative since', method: 'GET', path: '/v1/events?since=-1', status: 400, code: INVALID, message: /since/ },
  { name: 'audit: zero limit', method: 'GET', path: '/v1/audit?limit=0', status: 400, code: INVALID, message: /limit/ },
  { name: 'tenant: unknown', method: 'GET', path: '/v1/tenants/nobody', status: 404, code: 'GS_ERR_NOT_FOUND', message: /no tenant "nobody"/ },
  { name: 'unknown endpoint', method: 'PUT', path: '/v1/tasks', body: {}, status: 404, code: 'GS_ERR_NOT_FOUND', message: /no such endpoint: PUT \/v1\/tasks/ },
];

describe('bad requests', () => {
  it.each(cases)('$name: $status $code, nothing changed', async (c) => {
    const before = await state();
    const audit = await h.client.json<AuditRecordBody[]>('GET', '/v1/audit?limit=10000');
    const r = await send(c.method, typeof c.path === 'string' ? c.path : c.path(), c.body, c.contentType);
    expect(r.status).toBe(c.status);
    expect(r.body.error.code).toBe(c.code);
    expect(r.body.error.message).toMatch(c.message);
    expect(await state()).toEqual(before);
    const after = await h.client.json<AuditRecordBody[]>('GET', '/v1/audit?limit=10000');
    const added = after.slice(audit.length);
    // A refused change is audited with its code; a refused read or an unknown endpoint is not.
    const isChange = c.method !== 'GET' && !c.name.startsWith('unknown endpoint');
    if (isChange) {
      expect(added).toHaveLength(1);
      expect(added[0]).toMatchObject({ actor: expect.stringMatching(/^local:/), role: 'admin', result: c.code, message: r.body.error.message });
    } else {
      expect(added).toEqual([]);
    }
  });

  it('tenant token: prints a token once, and the config entry holding only its sha256', async () => {
    const r = await h.run(['tenant', 'token', '--tenant', 'alice', '--role', 'admin']);
    expect(r.status).toBe(0);
    const token = /token .*: (gs_\S+)$/m.exec(r.stdout)?.[1] ?? '';
    const entry = JSON.parse(/config entry for "tokens": (.*)$/m.exec(r.stdout)?.[1] ?? '{}') as { sha256: string; tenant: string; role: string };
    const { createHash } = await import('node:crypto');
    expect(entry).toEqual({ sha256: createHash('sha256').update(token).digest('hex'), tenant: 'alice', role: 'admin' });
    expect(r.stdout.split(token)).toHaveLength(2); // the secret appears once, and nowhere in the entry
  });
});
