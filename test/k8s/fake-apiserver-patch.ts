/**
 * The three patch formats client-node sends (its PatchStrategy content types), applied as the
 * API server applies them: JSON Patch (RFC 6902), JSON merge patch (RFC 7386), and strategic
 * merge patch, which is a merge patch whose lists with a merge key in the Kubernetes types are
 * merged item by item on that key (MERGE_KEYS: the lists this project's objects patch) and
 * whose `$patch: delete` item removes the item with that key. Other lists are replaced whole.
 */

export class PatchError extends Error {
  constructor(message: string, readonly code: 400 | 415 | 422 = 422) {
    super(message);
  }
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const PATCH_TYPES = {
  json: 'application/json-patch+json',
  merge: 'application/merge-patch+json',
  strategic: 'application/strategic-merge-patch+json',
} as const;

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return structuredClone(patch);
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = mergePatch(out[key] ?? null, value);
  }
  return out;
}

/** List field name -> the key its items merge on (from the Kubernetes types' patchMergeKey). */
const MERGE_KEYS: Record<string, string> = {
  conditions: 'type',
  containers: 'name',
  initContainers: 'name',
  ephemeralContainers: 'name',
  env: 'name',
  volumes: 'name',
  volumeMounts: 'mountPath',
  ownerReferences: 'uid',
  resourceClaims: 'name',
  containerStatuses: 'name',
  reservedFor: 'uid',
};

export function strategicMergePatch(target: Json, patch: Json, field = ''): Json {
  if (Array.isArray(patch)) {
    const key = MERGE_KEYS[field];
    if (key === undefined || !Array.isArray(target)) return structuredClone(patch.filter((i) => !(isObject(i) && i.$patch === 'delete')));
    const out = [...target];
    for (const item of patch) {
      if (!isObject(item) || !(key in item)) throw new PatchError(`strategic merge patch: an item of ${field} has no merge key ${key}`);
      const at = out.findIndex((o) => isObject(o) && o[key] === item[key]);
      if (item.$patch === 'delete') {
        if (at >= 0) out.splice(at, 1);
      } else if (at >= 0) {
        out[at] = strategicMergePatch(out[at]!, item);
      } else {
        out.push(structuredClone(item));
      }
    }
    return out;
  }
  if (!isObject(patch)) return structuredClone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return structuredClone(rest);
  }
  const out: JsonObject = isObject(target) ? { ...target } : {};
  for (const [k, value] of Object.entries(patch)) {
    if (k.startsWith('$')) continue;
    if (value === null) delete out[k];
    else out[k] = strategicMergePatch(out[k] ?? null, value, k);
  }
  return out;
}

/** RFC 6901 pointer -> parent container and final key. */
function locate(doc: Json, pointer: string): { parent: Json; key: string } {
  if (pointer === '' || !pointer.startsWith('/')) throw new PatchError(`json patch: path '${pointer}' is not a JSON pointer to a member`);
  const parts = pointer.slice(1).split('/').map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  let parent: Json = doc;
  for (const part of parts.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(parent) ? parent[Number(part)] : isObject(parent) ? parent[part] : undefined;
    if (next === undefined) throw new PatchError(`json patch: path '${pointer}' does not exist`);
    parent = next;
  }
  return { parent, key: parts[parts.length - 1]! };
}

function get(doc: Json, pointer: string): Json {
  const { parent, key } = locate(doc, pointer);
  const value = Array.isArray(parent) ? parent[Number(key)] : isObject(parent) ? parent[key] : undefined;
  if (value === undefined) throw new PatchError(`json patch: path '${pointer}' does not exist`);
  return value;
}

function remove(doc: Json, pointer: string): void {
  get(doc, pointer);
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete (parent as JsonObject)[key];
}

function add(doc: Json, pointer: string, value: Json): void {
  const { parent, key } = locate(doc, pointer);
  if (Array.isArray(parent)) {
    const at = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(at) || at < 0 || at > parent.length) throw new PatchError(`json patch: index '${key}' out of range in '${pointer}'`);
    parent.splice(at, 0, structuredClone(value));
  } else if (isObject(parent)) {
    parent[key] = structuredClone(value);
  } else {
    throw new PatchError(`json patch: path '${pointer}' does not exist`);
  }
}

export function jsonPatch(target: Json, ops: Json): Json {
  if (!Array.isArray(ops)) throw new PatchError('json patch: the body must be an array of operations', 400);
  const doc = structuredClone(target);
  for (const op of ops) {
    if (!isObject(op) || typeof op.op !== 'string' || typeof op.path !== 'string') throw new PatchError(`json patch: malformed operation ${JSON.stringify(op)}`, 400);
    const path = op.path;
    switch (op.op) {
      case 'add': add(doc, path, op.value ?? null); break;
      case 'remove': remove(doc, path); break;
      case 'replace': remove(doc, path); add(doc, path, op.value ?? null); break;
      case 'test':
        if (JSON.stringify(get(doc, path)) !== JSON.stringify(op.value)) throw new PatchError(`json patch: test operation for path '${path}' failed`);
        break;
      case 'move': case 'copy': {
        if (typeof op.from !== 'string') throw new PatchError(`json patch: ${op.op} without from`, 400);
        const value = structuredClone(get(doc, op.from));
        if (op.op === 'move') remove(doc, op.from);
        add(doc, path, value);
        break;
      }
      default: throw new PatchError(`json patch: unknown operation '${op.op}'`, 400);
    }
  }
  return doc;
}

/** Applies a PATCH body of `contentType` to `target`; PatchError (415 for an unknown type) otherwise. */
export function applyPatch(contentType: string, target: unknown, body: unknown): unknown {
  const type = contentType.split(';')[0]!.trim();
  if (type === PATCH_TYPES.json) return jsonPatch(target as Json, body as Json);
  if (type === PATCH_TYPES.merge) return mergePatch(target as Json, body as Json);
  if (type === PATCH_TYPES.strategic) return strategicMergePatch(target as Json, body as Json);
  throw new PatchError(`the body of the request was in an unknown format - accepted media types include: ${Object.values(PATCH_TYPES).join(', ')}`, 415);
}
