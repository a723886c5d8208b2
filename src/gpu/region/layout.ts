/**
 * The shared region's binary layout, as defined in native/region/gpushare_region.h (the one
 * definition). These constants are checked against the compiled header by layout.test.ts,
 * which runs build/native/region/region_layout; change both together.
 */

/** Sizes and offsets in bytes, in the shape region_layout prints them. */
export const REGION_LAYOUT = {
  constants: {
    magic: '0x4e4f494745525347',
    version: 1,
    maxDevices: 16,
    maxSlots: 1024,
    lanes: 8,
    kinds: 8,
    headerSize: 4096,
    slotSize: 2560,
    fileSize: 2625536,
    limitedKinds: 0x5f,
    shareOne: 65536,
    ownerStateShift: 62,
    ownerPidShift: 40,
    laneTicketShift: 16,
    laneKindShift: 8,
    laneDevShift: 4,
  },
  structs: {
    gs_region_header: {
      size: 4096,
      fields: {
        magic: { offset: 0, size: 8 },
        version: { offset: 8, size: 4 },
        header_size: { offset: 12, size: 4 },
        slot_size: { offset: 16, size: 4 },
        max_slots: { offset: 20, size: 4 },
        max_devices: { offset: 24, size: 4 },
        kinds: { offset: 28, size: 4 },
        file_size: { offset: 32, size: 8 },
        device_count: { offset: 40, size: 4 },
        lanes_per_slot: { offset: 44, size: 4 },
        created_at_ms: { offset: 48, size: 8 },
        creator_pid: { offset: 56, size: 4 },
        limited_kinds: { offset: 60, size: 4 },
        mem_limit: { offset: 64, size: 128 },
        core_limit_pct: { offset: 192, size: 64 },
        priority: { offset: 256, size: 64 },
        ticket: { offset: 320, size: 8 },
        release_epoch: { offset: 384, size: 8 },
        slots_hwm: { offset: 448, size: 4 },
      },
    },
    gs_region_slot: {
      size: 2560,
      fields: {
        owner: { offset: 0, size: 8 },
        pid: { offset: 8, size: 4 },
        start_time: { offset: 16, size: 8 },
        attached_at_ms: { offset: 24, size: 8 },
        lanes: { offset: 64, size: 128 },
        dev_total: { offset: 192, size: 128 },
        dev: { offset: 320, size: 2048 },
        sm_partition: { offset: 2496, size: 64 },
      },
    },
    gs_region_lane: {
      size: 16,
      fields: {
        meta: { offset: 0, size: 8 },
        bytes: { offset: 8, size: 8 },
      },
    },
    gs_region_slot_dev: {
      size: 128,
      fields: {
        bytes: { offset: 0, size: 64 },
        kernels_launched: { offset: 64, size: 8 },
        busy_ns: { offset: 72, size: 8 },
        throttle_ns: { offset: 80, size: 8 },
        achieved_share: { offset: 88, size: 4 },
        target_share: { offset: 92, size: 4 },
        priority: { offset: 96, size: 4 },
        policy: { offset: 100, size: 4 },
      },
    },
    gs_region_file: {
      size: 2625536,
      fields: {
        header: { offset: 0, size: 4096 },
        slots: { offset: 4096, size: 2621440 },
      },
    },
  },
} as const;

/** gs_region_kind, by index. */
export const REGION_KINDS = ['context', 'alloc', 'vmm', 'array', 'pool', 'host', 'graph'] as const;
export type RegionKind = (typeof REGION_KINDS)[number];

/** gs_region_slot_dev.priority (gs_priority). */
export const COMPUTE_PRIORITIES = { 0: 'low', 1: 'normal', 2: 'high' } as const;
/** gs_region_slot_dev.policy (GS_REGION_POLICY_*): none = not governed on that device. */
export const COMPUTE_POLICIES = { 0: 'none', 1: 'hard', 2: 'share' } as const;

/** Slot owner states (bits 63..62 of the owner word). */
export const SLOT_STATES = { 0: 'free', 1: 'active', 2: 'reclaiming' } as const;
/** Lane states (bits 3..0 of the lane meta word). */
export const LANE_STATES = { 0: 'free', 1: 'writing', 2: 'deciding', 3: 'granted', 4: 'waiting' } as const;
