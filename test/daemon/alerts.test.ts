/**
 * `gpushare alerts` and `gpushare silence` against a real daemon (`gpushare serve` on the
 * simulated backend): the CLI, the API and the database end to end; silences survive a restart.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Harness } from './harness.js';

const h = new Harness();
beforeAll(() => h.start());
afterAll(() => h.stop());

describe('gpushare alerts / silence', () => {
  it('lists no alerts on a quiet daemon, in every form', async () => {
    expect(await h.run(['alerts'])).toMatchObject({ status: 0, stdout: 'No alerts.\n' });
    expect(await h.run(['alerts', '--all', '-o', 'json'])).toMatchObject({ status: 0, stdout: '[]\n' });
    const bad = await h.run(['alerts', '--since', 'yesterday-ish']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/is not a time/);
  });

  it('adds, lists and ends a silence; it outlives a restart', async () => {
    const added = await h.run(['silence', 'add', '-m', 'rule=gpu-xid', '-m', 'gpu=0', '--for', '2h', '-c', 'reseating the card']);
    expect(added.stderr).toBe('');
    const id = added.stdout.trim();
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    const ls = await h.run(['silence', 'ls']);
    expect(ls.stdout).toMatch(new RegExp(`^ID +MATCHERS +UNTIL +BY +COMMENT\\n${id} +rule=gpu-xid,gpu=0 +(119m|120m|2h) left +local:\\d+ +reseating the card\\n$`));
    await h.stop();
    await h.start();
    const json = JSON.parse((await h.run(['silence', 'ls', '-o', 'json'])).stdout) as { id: string; expired: boolean }[];
    expect(json.map((s) => [s.id, s.expired])).toEqual([[id, false]]);
    expect(await h.run(['silence', 'rm', id])).toMatchObject({ status: 0, stdout: `${id}\n` });
    expect((await h.run(['silence', 'ls'])).stdout).toBe('No silences.\n');
    expect((await h.run(['silence', 'ls', '--all'])).stdout).toMatch(new RegExp(`${id} .*ended \\d+s ago`));
    const again = await h.run(['silence', 'rm', id]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/already ended/);
  });

  it('refuses a matcher it does not know and a length of time that is not one', async () => {
    const r = await h.run(['silence', 'add', '-m', 'colour=red', '--for', '1h']);
    expect(r.stderr).toMatch(/"colour=red" is not a matcher; expected NAME=VALUE with NAME one of rule, severity, gpu, uuid, task, tenant/);
    const t = await h.run(['silence', 'add', '-m', 'rule=gpu-xid', '--for', 'forever']);
    expect(t.stderr).toMatch(/--for: "forever" is not a length of time/);
  });
});
