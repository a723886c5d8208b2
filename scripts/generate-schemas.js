#!/usr/bin/env node
// Build step (npm run build:ts, after tsc): writes the config file's JSON Schema and the HTTP
// API's OpenAPI document into dist/, so they ship in the package (docs/operations.md):
//   dist/config.schema.json  from the zod schema the daemon validates its config file with
//   dist/openapi.json        what a daemon serves at /openapi.json, made from the same routes
// test/ops/schemas.test.ts checks both against the code (and the OpenAPI document against a
// running daemon's).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { configJsonSchema, openApiDocument } from './schemas.js';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
writeFileSync(`${dist}config.schema.json`, `${JSON.stringify(configJsonSchema(), null, 2)}\n`);
writeFileSync(`${dist}openapi.json`, `${JSON.stringify(await openApiDocument(), null, 2)}\n`);
