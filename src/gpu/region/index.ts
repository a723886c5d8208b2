export { BOARD_LAYOUT } from './board-layout.js';
export { REGION_KINDS, REGION_LAYOUT, type RegionKind } from './layout.js';
export {
  decodeRegion,
  readRegion,
  type RegionDeviceLimits,
  type RegionHeader,
  type RegionReservation,
  type RegionSlot,
  type RegionSmPartition,
  type RegionSlotDevice,
  type RegionSnapshot,
} from './reader.js';
export { usageByDevice, type DeviceUsage } from './usage.js';
