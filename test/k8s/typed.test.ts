import { describe, expect, it } from 'vitest';
import { checkTyped, checkWire, typeOf } from './typed.js';

describe('typed checks', () => {
  const wire = { apiVersion: 'resource.k8s.io/v1', kind: 'DeviceClass', metadata: { name: 'c' }, spec: { selectors: [{ cel: { expression: 'true' } }] } };

  it('pass an object the model knows, in either form', () => {
    const typed = checkWire(wire, 'V1DeviceClass');
    expect(checkTyped(typed, 'V1DeviceClass')).toEqual(wire);
  });

  it('fail on a field the model does not know', () => {
    expect(() => checkWire({ ...wire, spec: { ...wire.spec, selector: [] } }, 'V1DeviceClass')).toThrow(/does not survive/);
    expect(() => checkTyped({ ...wire, spec: { ...wire.spec, selector: [] } }, 'V1DeviceClass')).toThrow(/does not survive/);
  });

  it('fail on the wire name where the model has its own (int, default)', () => {
    expect(() => checkTyped({ int: 3 }, 'V1DeviceAttribute')).toThrow(/does not survive/);
    expect(checkTyped({ _int: 3 }, 'V1DeviceAttribute')).toEqual({ int: 3 });
  });

  it('refuse a type name the serializer has no model for', () => {
    expect(() => checkWire(wire, 'V1DeviceKlass')).toThrow(/no model named V1DeviceKlass/);
  });

  it.each([
    [{ apiVersion: 'v1', kind: 'Pod' }, 'V1Pod'],
    [{ apiVersion: 'v1', kind: 'Event' }, 'CoreV1Event'],
    [{ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceSlice' }, 'V1ResourceSlice'],
    [{ apiVersion: 'resource.k8s.io/v1', kind: 'ResourceClaim' }, 'ResourceV1ResourceClaim'],
  ])('name %o as %s', (obj, type) => {
    expect(typeOf(obj)).toBe(type);
  });
});
