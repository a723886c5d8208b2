import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bearer, inProcessDaemon, TEST_TOKENS } from '../../../test/helpers/api.js';

const web = mkdtempSync(join(tmpdir(), 'gpushare-web-'));
mkdirSync(join(web, 'assets'));
writeFileSync(join(web, 'index.html'), '<!doctype html><title>gpushare</title><script type="module" src="./assets/index-abc123.js"></script>');
writeFileSync(join(web, 'assets', 'index-abc123.js'), 'console.log(1)');
writeFileSync(join(web, 'secret.txt'), 'not served: no known type');

const d = inProcessDaemon();
const built = await d.api({ tokens: TEST_TOKENS, webRoot: web });
const missing = await d.api({ tokens: TEST_TOKENS, webRoot: join(web, 'nowhere') });
const local = await d.api({ tokens: null, webRoot: web });
afterAll(() => d.close());

describe('the dashboard files at /ui/', () => {
  it('serves the page without a token, revalidated, with a policy that allows only its own origin', async () => {
    for (const app of [built, local]) {
      const r = await app.inject({ method: 'GET', url: '/ui/' });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(r.headers['cache-control']).toBe('no-cache');
      expect(r.headers['content-security-policy']).toContain("default-src 'self'");
      expect(r.body).toContain('<title>gpushare</title>');
    }
    expect((await built.inject({ method: 'GET', url: '/ui/index.html' })).statusCode).toBe(200);
  });

  it('sends / to /ui/, and answers /favicon.ico without a token (a browser asks for it by itself)', async () => {
    const r = await built.inject({ method: 'GET', url: '/' });
    expect([r.statusCode, r.headers.location]).toEqual([302, '/ui/']);
    expect((await built.inject({ method: 'GET', url: '/favicon.ico' })).statusCode).toBe(204);
  });

  it('caches hashed assets for a year', async () => {
    const r = await built.inject({ method: 'GET', url: '/ui/assets/index-abc123.js' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(r.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(r.body).toBe('console.log(1)');
  });

  it('serves nothing outside the build, nothing hidden and no file of an unknown type', async () => {
    for (const url of ['/ui/../package.json', '/ui/%2e%2e/package.json', '/ui/assets/../../secret.txt', '/ui/.hidden.js', '/ui/secret.txt', '/ui/assets/nope.js', '/ui/assets//index-abc123.js']) {
      const r = await built.inject({ method: 'GET', url });
      // inject normalizes dots away: a path that then leaves /ui/ is no dashboard route (the API's 401).
      expect([url, [401, 404].includes(r.statusCode)]).toEqual([url, true]);
      expect(r.body).not.toContain('not served');
    }
  });

  it('refuses a path with dot segments as it arrives on a socket, unnormalized', async () => {
    const url = new URL(await built.listen({ host: '127.0.0.1', port: 0 }));
    for (const path of ['/ui/../package.json', '/ui/assets/../../secret.txt', '/ui/%2e%2e/package.json']) {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(url.port), url.hostname, () => socket.end(`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
        let text = '';
        socket.on('data', (b: Buffer) => (text += b.toString()));
        socket.on('end', () => resolve(text));
        socket.on('error', reject);
      });
      expect([path, answer.split('\r\n')[0]]).toEqual([path, 'HTTP/1.1 404 Not Found']);
    }
  });

  it('keeps the API behind its token: only the files are public', async () => {
    expect((await built.inject({ method: 'GET', url: '/v1/gpus' })).statusCode).toBe(401);
    expect((await built.inject({ method: 'GET', url: '/v1/gpus', headers: bearer('alice-token') })).statusCode).toBe(200);
    expect((await built.inject({ method: 'GET', url: '/nothing-here' })).statusCode).toBe(401);
  });

  it('answers a daemon without the build with a page that says how to build it', async () => {
    const r = await missing.inject({ method: 'GET', url: '/ui/' });
    expect(r.statusCode).toBe(503);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.body).toContain('npm run build:web');
    expect((await missing.inject({ method: 'GET', url: '/ui/assets/index-abc123.js' })).statusCode).toBe(404);
  });
});
