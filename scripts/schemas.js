// The two documents scripts/generate-schemas.js writes, made from the compiled code in dist/
// (a module of its own so the tests make them the same way).
import pino from 'pino';
import { z } from 'zod';
import { buildApi } from '../dist/api/server.js';
import { ConfigFileSchema } from '../dist/node/config.js';

/**
 * The config file's JSON Schema, draft-07 (what editors' JSON support reads most widely), of
 * what the file may hold (zod's input side: `expiresAt` as text or a number, before it is read).
 */
export function configJsonSchema() {
  return {
    ...z.toJSONSchema(ConfigFileSchema, { target: 'draft-7', io: 'input' }),
    $id: 'https://github.com/gpushare/gpushare/dist/config.schema.json',
    title: 'gpushare daemon configuration (config.json)',
  };
}

/**
 * The OpenAPI document the API serves. Routes only read the daemon when a request comes, so the
 * document is made without one: the app is built, made ready and closed, never listening.
 */
export async function openApiDocument() {
  const app = await buildApi({
    daemon: /** @type {never} */ (null),
    logger: pino({ level: 'silent' }),
    tokens: null,
    backend: { kind: 'simulated', description: 'none (document only)' },
  });
  await app.ready();
  const doc = app.swagger();
  await app.close();
  return doc;
}
