/**
 * The compute board's binary layout, as defined in native/region/gpushare_board.h (the one
 * definition): one file per GPU where libgpushare's governed processes lay out their time
 * windows (native/shim/COMPUTE.md). These constants are checked against the compiled header by
 * layout.test.ts, which runs build/native/region/board_layout; change both together.
 */

/** Sizes and offsets in bytes, in the shape board_layout prints them. */
export const BOARD_LAYOUT = {
  constants: {
    magic: '0x4452414f42534743',
    version: 1,
    slots: 64,
    headerSize: 64,
    slotSize: 64,
    fileSize: 4160,
    ownerPidShift: 32,
    filePrefix: 'gpushare-compute-',
  },
  structs: {
    gs_board: {
      size: 4160,
      fields: {
        magic: { offset: 0, size: 8 },
        version: { offset: 8, size: 4 },
        slots: { offset: 12, size: 4 },
        slot: { offset: 64, size: 4096 },
      },
    },
    gs_board_slot: {
      size: 64,
      fields: {
        owner: { offset: 0, size: 8 },
        demand_ns: { offset: 8, size: 8 },
        heartbeat_ns: { offset: 16, size: 8 },
        share_ppm: { offset: 24, size: 4 },
        priority: { offset: 28, size: 4 },
        policy: { offset: 32, size: 4 },
      },
    },
  },
} as const;
