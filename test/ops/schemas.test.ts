/**
 * The documents the build writes into dist/ (scripts/generate-schemas.js): the config file's
 * JSON Schema accepts the README's and docs/operations.md's example configs and refuses bad
 * ones as the daemon does; the static OpenAPI document is the one a running daemon serves.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigFileSchema } from '../../src/node/config.js';
import { Harness } from '../daemon/harness.js';

const ROOT = new URL('../../', import.meta.url);
const read = (path: string): string => readFileSync(new URL(path, ROOT), 'utf8');
const schema = JSON.parse(read('dist/config.schema.json')) as Record<string, unknown>;

// A JSON Schema validator: ajv 8, as fastify (a dependency) carries it for its own validation.
type Validate = ((data: unknown) => boolean) & { errors?: { instancePath: string; message?: string }[] | null };
const fastifyRequire = createRequire(createRequire(import.meta.url).resolve('@fastify/ajv-compiler'));
const Ajv = fastifyRequire('ajv') as new (options: object) => { compile(schema: object): Validate };
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** The first ```json block after `heading` in a Markdown file. */
function jsonBlockAfter(path: string, heading: string): unknown {
  const text = read(path);
  const at = text.indexOf(heading);
  if (at < 0) throw new Error(`${path}: no "${heading}"`);
  const m = /```json\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error(`${path}: no json block after "${heading}"`);
  return JSON.parse(m[1]!);
}

describe('dist/config.schema.json', () => {
  it('is draft-07, of the config file', () => {
    expect(schema['$schema']).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema['additionalProperties']).toBe(false);
    expect(Object.keys(schema['properties'] as object).sort()).toEqual(Object.keys(ConfigFileSchema.shape).sort());
  });

  it("accepts the README's example, its placeholders filled in as the text says", () => {
    const example = jsonBlockAfter('README.md', 'A config file for a TCP listener') as { tokens: { sha256: string }[] };
    // The README shows where a token's hash comes from; a real file holds the hash.
    for (const t of example.tokens) t.sha256 = 'ab'.repeat(32);
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(ConfigFileSchema.safeParse(example).success).toBe(true);
  });

  it("accepts docs/operations.md's system service config", () => {
    const example = jsonBlockAfter('docs/operations.md', 'A system service config');
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(ConfigFileSchema.safeParse(example).success).toBe(true);
  });

  it.each([
    ['an unknown key', { stateDir: '/s', extra: true }],
    ['a wrong type', { stateDir: 3 }],
    ['an empty listen list', { listen: [] }],
    ['a backend that does not exist', { backend: 'cuda' }],
    ['a token hash that is not sha256 hex', { tokens: [{ sha256: 'nope', tenant: 'a' }] }],
    ['a daemonNice out of range', { daemonNice: -21 }],
    ['a relative taskDir', { sandbox: { taskDir: 'tasks' } }],
  ])('refuses %s, as the daemon does', (_, bad) => {
    expect(validate(bad)).toBe(false);
    expect(ConfigFileSchema.safeParse(bad).success).toBe(false);
  });
});

describe('dist/openapi.json', () => {
  const h = new Harness();
  beforeAll(() => h.start());
  afterAll(() => h.cleanup());

  it('is the document a running daemon serves', async () => {
    const served = await h.client.json<unknown>('GET', '/openapi.json');
    expect(JSON.parse(read('dist/openapi.json'))).toEqual(served);
  });
});
