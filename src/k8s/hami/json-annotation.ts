/** Decoding of gpushare's JSON annotations: JSON, then the codec's zod schema, one error naming the annotation. */
import type { z } from 'zod';
import { fail, ok, type Result } from '../../domain/index.js';

/** `text` read as `schema`; on failure the first problem's path and what the annotation should look like. */
export function decodeJsonAnnotation<S extends z.ZodType>(text: string, schema: S, annotation: string, expected: string): Result<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return fail(annotation, 'malformed', `is not JSON; expected ${expected}`);
  }
  const r = schema.safeParse(raw);
  if (r.success) return ok(r.data);
  const i = r.error.issues[0];
  return fail(annotation, 'malformed', `${i ? `${i.path.join('.') || '(top)'}: ${i.message}` : 'invalid'}; expected ${expected}`);
}
