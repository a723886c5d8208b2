/**
 * The compute board's binary layout, as defined in native/region/gpushare_board.h (the one
 * definition): one file per GPU where libgpushare's governed processes lay out their time
 * windows (native/shim/COMPUTE.md). These constants are checked against the compiled header by
 * layout.test.ts, which runs build/native/region/board_layout; change both together.
 */

/** A struct in the shape board_layout prints it, from rows of [field, offset, size] in bytes. */
function struct(size: number, rows: readonly (readonly [name: string, offset: number, size: number])[]) {
  return { size, fields: Object.fromEntries(rows.map(([name, offset, bytes]) => [name, { offset, size: bytes }])) };
}

/** The same for a struct whose fields follow each other without a gap, from [field, size] rows. */
function packed(size: number, rows: readonly (readonly [name: string, size: number])[]) {
  let offset = 0;
  return struct(size, rows.map(([name, bytes]) => [name, (offset += bytes) - bytes, bytes] as const));
}

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
    grantsMagic: '0x544e415247534743',
    grantsVersion: 1,
    grantsFileSize: 4160,
    grantsFileSuffix: '.grants',
    grantsEnv: 'GPUSHARE_COMPUTE_GRANTS',
  },
  structs: {
    gs_board: struct(4160, [
      ['magic', 0, 8],
      ['version', 8, 4],
      ['slots', 12, 4],
      ['slot', 64, 4096],
    ]),
    gs_board_slot: struct(64, [
      ['owner', 0, 8],
      ['demand_ns', 8, 8],
      ['heartbeat_ns', 16, 8],
      ['share_ppm', 24, 4],
      ['priority', 28, 4],
      ['policy', 32, 4],
    ]),
    // boards per user: what each task is entitled to, written by root only (gpushare-exec)
    gs_grants: struct(4160, [
      ['magic', 0, 8],
      ['version', 8, 4],
      ['entries', 12, 4],
      ['grant', 64, 4096],
    ]),
    gs_grant: packed(64, [['owner', 8], ['live', 4], ['uid', 4], ['share_ppm', 4], ['priority', 4], ['policy', 4]]),
  },
} as const;
