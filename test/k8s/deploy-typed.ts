/**
 * Wrong types in YAML, which client-node's serializer lets through (it copies a primitive
 * whatever its type: `replicas: "2"` or `labels: {x: true}` survive its round trip). Walks a
 * wire object along the library's model (attribute type maps) and names every value whose
 * JSON type is not the model's, as the API server's decoding would refuse it. Quantities are
 * the one exception the API allows: a number where a resource map (limits, requests, ...)
 * holds quantity strings.
 */
import * as k8s from '@kubernetes/client-node';

type Model = { getAttributeTypeMap(): { name: string; baseName: string; type: string }[] };

/** Maps of resource quantities: Quantity decodes a JSON number as well as a string. */
const QUANTITY_MAPS = new Set(['limits', 'requests', 'capacity', 'allocatable', 'hard', 'overhead']);

function model(type: string): Model | null {
  const m = (k8s as Record<string, unknown>)[type];
  return typeof m === 'function' && 'getAttributeTypeMap' in m ? (m as unknown as Model) : null;
}

/** Every mismatch as `path: expected T, got U`. */
export function typeProblems(value: unknown, type: string, path = '', field = ''): string[] {
  if (value === null || value === undefined) return [];
  const got = Array.isArray(value) ? 'array' : typeof value;
  const problem = (expected: string): string[] => [`${path || '(top)'}: expected ${expected}, got ${got} ${JSON.stringify(value)}`];
  const array = /^Array<(.+)>$/.exec(type);
  if (array) return Array.isArray(value) ? value.flatMap((v, i) => typeProblems(v, array[1]!, `${path}[${i}]`, field)) : problem('a list');
  const map = /^\{ \[key: string\]: (.+); \}$/.exec(type);
  if (map) {
    if (got !== 'object') return problem('a map');
    const valueType = map[1] === 'string' && QUANTITY_MAPS.has(field) ? 'quantity' : map[1]!;
    return Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => typeProblems(v, valueType, `${path}.${k}`, field));
  }
  switch (type) {
    case 'string':
    case 'String':
    case 'Date':
      return got === 'string' ? [] : problem('a string');
    case 'quantity':
      return got === 'string' || got === 'number' ? [] : problem('a quantity');
    case 'number':
      return got === 'number' ? [] : problem('a number');
    case 'boolean':
      return got === 'boolean' ? [] : problem('a boolean');
    case 'IntOrString':
      return got === 'string' || got === 'number' ? [] : problem('an int or a string');
    case 'any':
    case 'object':
      return [];
  }
  const m = model(type);
  if (!m) throw new Error(`client-node has no model named ${type}`);
  if (got !== 'object') return problem(`a ${type} object`);
  return m.getAttributeTypeMap().flatMap((a) => typeProblems((value as Record<string, unknown>)[a.baseName], a.type, `${path}.${a.baseName}`, a.baseName));
}
