import { readFileSync } from 'node:fs';
import { loadAllYaml, type V1DeviceClass } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { checkTyped, checkWire } from '../../../test/k8s/typed.js';
import { deviceClasses } from './device-classes.js';
import { DEVICE_CLASS, DRIVER_NAME } from './names.js';

const yamlText = readFileSync(new URL('../../../deploy/dra/device-classes.yaml', import.meta.url), 'utf8');

describe('DeviceClasses', () => {
  const classes = deviceClasses();

  it('are one for a whole GPU and one for a share, both on this driver\'s non-MIG devices', () => {
    expect(classes.map((c) => c.metadata?.name)).toEqual([DEVICE_CLASS.gpu, DEVICE_CLASS.slice]);
    for (const c of classes) {
      const expression = c.spec.selectors![0]!.cel!.expression;
      expect(expression).toContain(`device.driver == "${DRIVER_NAME}"`);
      expect(expression).toContain(`!device.attributes["${DRIVER_NAME}"].migEnabled`);
    }
    expect(classes[0]!.spec.selectors![0]!.cel!.expression).toContain(`device.capacity["${DRIVER_NAME}"].cores.compareTo(quantity("100")) == 0`);
    expect(classes[1]!.spec.selectors![0]!.cel!.expression).not.toContain('capacity');
  });

  it('name another driver when asked', () => {
    expect(deviceClasses('gpu.example.com')[1]!.spec.selectors![0]!.cel!.expression).toBe('device.driver == "gpu.example.com" && !device.attributes["gpu.example.com"].migEnabled');
  });

  it('round-trip through client-node\'s typed serializer', () => {
    for (const c of classes) checkTyped(c, 'V1DeviceClass');
  });

  it('deploy/dra/device-classes.yaml holds exactly these objects, typed', () => {
    const fromYaml = loadAllYaml(yamlText) as V1DeviceClass[];
    expect(fromYaml.map((c) => c.constructor.name)).toEqual(['V1DeviceClass', 'V1DeviceClass']);
    expect(JSON.parse(JSON.stringify(fromYaml))).toEqual(JSON.parse(JSON.stringify(classes)));
    for (const c of fromYaml) checkTyped(c, 'V1DeviceClass');
  });

  it('deploy/dra/device-classes.yaml has no field client-node\'s model does not know', async () => {
    const { default: yaml } = await import('js-yaml');
    for (const doc of yaml.loadAll(yamlText)) checkWire(doc, 'V1DeviceClass');
  });
});
