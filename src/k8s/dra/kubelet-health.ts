/** The device-health stream's content, pure: each published device with its GPU's health. */
import type { DeviceCatalog } from './prepare.js';

export type HealthStatus = 'HEALTHY' | 'UNHEALTHY' | 'UNKNOWN';

export interface HealthDevice {
  readonly pool: string;
  readonly device: string;
  readonly health: HealthStatus;
  readonly message: string;
}

/** Every device of the catalog (a slice is as healthy as its GPU), in name order. */
export function healthSnapshot(catalog: DeviceCatalog): HealthDevice[] {
  return [...catalog.names()].sort().flatMap((name) => {
    const d = catalog.get(name);
    if (d === undefined) return [];
    const health: HealthStatus = d.gpu.health === 'ok' ? 'HEALTHY' : 'UNHEALTHY';
    const message = d.gpu.health === 'ok' ? '' : `GPU ${d.gpu.index} (${d.gpu.uuid}) is lost: it stopped answering the driver`;
    return [{ pool: catalog.pool, device: name, health, message }];
  });
}
