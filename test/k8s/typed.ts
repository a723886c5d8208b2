/**
 * Checks an object against @kubernetes/client-node's own typed serializer, the way the API
 * server's strict field validation would: anything the library's model does not know (a
 * misspelt field, a field of the wrong type) is lost on the round trip, and the check fails
 * with a diff naming it.
 *
 * - `checkTyped(obj, 'V1ResourceSlice')`: `obj` in the library's model form (as code builds it,
 *   `_default`, `_int`): serialize -> JSON -> deserialize must give `obj` back. Returns the wire JSON.
 * - `checkWire(json, 'V1ResourceSlice')`: `json` as it travels (as YAML or a request body has it):
 *   deserialize -> serialize must give `json` back. Returns the model form.
 * - `typeOf(json)`: the serializer's type name for an object's apiVersion and kind.
 */
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import { ObjectSerializer } from '@kubernetes/client-node/dist/gen/models/ObjectSerializer.js';

/** A type name the serializer has a model for (an unknown one would pass anything through unchecked). */
function knownType(type: string): void {
  const model = (k8s as Record<string, unknown>)[type];
  if (typeof model !== 'function' || !('getAttributeTypeMap' in model)) throw new Error(`client-node has no model named ${type}`);
}

/** Plain JSON data: undefined members dropped, Dates and RFC 3339 strings as one ISO form. */
function plain(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value), (_key, v: unknown) => {
    if (typeof v === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(v)) return new Date(v).toISOString();
    return v;
  });
}

export function checkTyped<T = unknown>(obj: T, type: string): Record<string, unknown> {
  knownType(type);
  const wire = plain(ObjectSerializer.serialize(obj, type, '')) as Record<string, unknown>;
  const back: unknown = ObjectSerializer.deserialize(wire, type, '');
  assert.deepStrictEqual(plain(back), plain(obj), `${type} does not survive client-node's serializer unchanged`);
  return wire;
}

export function checkWire<T = unknown>(json: unknown, type: string): T {
  knownType(type);
  const typed = ObjectSerializer.deserialize(json, type, '') as T;
  assert.deepStrictEqual(plain(ObjectSerializer.serialize(typed, type, '')), plain(json), `${type} JSON does not survive client-node's serializer unchanged`);
  return typed;
}

/** The serializer's type name (`V1ResourceSlice`, `CoreV1Event`, ...) for an object's apiVersion and kind. */
export function typeOf(json: { apiVersion?: string; kind?: string }): string {
  const [group, version] = (json.apiVersion ?? '').includes('/') ? (json.apiVersion ?? '').split('/') : ['', json.apiVersion ?? ''];
  const prefix = `${version!.charAt(0).toUpperCase()}${version!.slice(1)}`;
  const kind = json.kind ?? '';
  if (kind === 'Event' && group === '') return 'CoreV1Event';
  if (kind === 'ResourceClaim' && group === 'resource.k8s.io') return `Resource${prefix}ResourceClaim`;
  return `${prefix}${kind}`;
}
