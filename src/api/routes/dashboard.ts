/**
 * The web dashboard's files (built from web/ into dist/web/ by `npm run build:web`), served at
 * /ui/ on every listener; / sends a browser there. They are public: the page holds no data until
 * the user gives it a token, and every API call it then makes is authenticated like any other
 * (server.ts skips the token check for routes marked `public`). Hashed assets are cached for a
 * year; index.html is revalidated, so a rebuilt dashboard is picked up on the next load. A daemon
 * without the build answers with a page that says how to build it.
 */
import type { FastifyReply } from 'fastify';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ErrorCodes } from '../../domain/index.js';
import type { Api, RouteContext } from './shared.js';

/** Where the dashboard's path starts (with its trailing slash). */
export const DASHBOARD_PATH = '/ui/';

/** The build's directory: dist/web beside the compiled API (dist/api/routes), or the checkout's dist/web when run from src/ (tests). */
export function defaultWebRoot(): string {
  const candidates = [fileURLToPath(new URL('../../web/', import.meta.url)), fileURLToPath(new URL('../../../dist/web/', import.meta.url))];
  return candidates.find((dir) => existsSync(join(dir, 'index.html'))) ?? candidates[0]!;
}

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** Only what the page needs: its own scripts, styles and the API on the same origin. */
const CSP = "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
const IMMUTABLE = 'public, max-age=31536000, immutable';
/** A file path below the root: names of letters, digits, `.`, `_` and `-`, none starting with a dot. */
const SAFE_PATH = /^[A-Za-z0-9_-][A-Za-z0-9._-]*(\/[A-Za-z0-9_-][A-Za-z0-9._-]*)*$/;

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gpushare dashboard: not built</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:3em auto;padding:0 1em;color:#222}code{background:#eee;padding:.1em .3em;border-radius:3px}</style></head>
<body><h1>The dashboard is not built</h1>
<p>This daemon runs from a checkout whose dashboard files (<code>dist/web/</code>) are missing.
Build them in the checkout with <code>npm run build:web</code> (or all of gpushare with <code>npm run build</code>), then reload this page.
The daemon does not need a restart.</p>
<p>The API itself works: <code>gpushare ps</code>, <code>gpushare gpus</code> and <code>gpushare top</code> answer as usual.</p></body></html>
`;

export function registerDashboardRoutes(api: Api, { webRoot }: RouteContext): void {
  const root = resolve(webRoot ?? defaultWebRoot());
  // Hashed assets never change under their name: read once.
  const assets = new Map<string, Buffer>();

  api.get('/', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => reply.redirect(DASHBOARD_PATH, 302));
  // Browsers ask for it by themselves, without the token: answered, so it is no failed authentication.
  api.get('/favicon.ico', { config: { public: true }, schema: { hide: true } }, async (_req, reply) => reply.status(204).header('cache-control', 'public, max-age=86400').send());

  api.get(`${DASHBOARD_PATH}*`, { config: { public: true }, schema: { hide: true, params: z.object({ '*': z.string() }) } }, async (req, reply) => {
    const asked = req.params['*'] === '' ? 'index.html' : req.params['*'];
    void reply.header('x-content-type-options', 'nosniff').header('referrer-policy', 'no-referrer');
    if (asked === 'index.html') {
      void reply.header('content-security-policy', CSP).header('cache-control', 'no-cache').type(TYPES['.html']!);
      try {
        return await readFile(join(root, 'index.html'));
      } catch {
        return reply.status(503).header('cache-control', 'no-store').send(NOT_BUILT);
      }
    }
    const file = SAFE_PATH.test(asked) ? join(root, asked) : null;
    const type = TYPES[extname(asked)];
    if (file === null || !file.startsWith(root + sep) || type === undefined) return notFound(reply, asked);
    let body = assets.get(file);
    if (body === undefined) {
      try {
        body = await readFile(file);
      } catch {
        return notFound(reply, asked);
      }
      if (asked.startsWith('assets/')) assets.set(file, body);
    }
    // Vite names everything under assets/ by its content's hash.
    return reply.header('cache-control', asked.startsWith('assets/') ? IMMUTABLE : 'no-cache').type(type).send(body);
  });
}

function notFound(reply: FastifyReply, asked: string): FastifyReply {
  return reply.status(404).send({ error: { code: ErrorCodes.notFound, message: `no dashboard file "${asked.slice(0, 100)}"` } });
}
