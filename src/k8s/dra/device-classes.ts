/**
 * The DeviceClasses gpushare ships (deploy/dra/device-classes.yaml is this function's output,
 * checked by a test): one for a whole GPU and one for a share of one. Both select this driver's
 * devices on GPUs not in MIG mode (a MIG GPU's memory and SMs belong to its instances, which
 * libgpushare does not slice).
 *
 * Whole GPU: a device with all 100 cores. In the consumable layout that is the GPU's one
 * shared device, and a claim that names no capacity consumes its request policy's default,
 * which is everything (slices.ts), so the claim has the GPU to itself; in the fixed layout it is
 * the whole-GPU partition, which consumes the GPU's whole counter set.
 * Share: any of this driver's devices; the claim says how much with capacity requests
 * (consumable) or a selector on capacity (fixed), e.g.
 * `device.capacity["gpu.gpushare.io"].memory.compareTo(quantity("20Gi")) >= 0`.
 */
import type { V1DeviceClass } from '@kubernetes/client-node';
import { ATTRIBUTE, CAPACITY, DEVICE_CLASS, DRIVER_NAME } from './names.js';
import { WHOLE_GPU_CORES } from './slices.js';

function ourDevices(driverName: string): string {
  return `device.driver == "${driverName}" && !device.attributes["${driverName}"].${ATTRIBUTE.migEnabled}`;
}

function deviceClass(name: string, expression: string): V1DeviceClass {
  return {
    apiVersion: 'resource.k8s.io/v1',
    kind: 'DeviceClass',
    metadata: { name, labels: { 'app.kubernetes.io/part-of': 'gpushare' } },
    spec: { selectors: [{ cel: { expression } }] },
  };
}

export function deviceClasses(driverName: string = DRIVER_NAME): V1DeviceClass[] {
  const whole = `${ourDevices(driverName)} && device.capacity["${driverName}"].${CAPACITY.cores}.compareTo(quantity("${WHOLE_GPU_CORES}")) == 0`;
  return [deviceClass(DEVICE_CLASS.gpu, whole), deviceClass(DEVICE_CLASS.slice, ourDevices(driverName))];
}
