/**
 * The remote GPU wire format's numbers, version 1 (docs/remote.md "Framing" and "Calls"), as the
 * TypeScript SDK speaks it: the op table with each op's request and reply schema, the header's
 * flags, the object kinds. native/remote/proto.h is the C side of the same table;
 * test/remote/sdk-codec.test.ts reads that header and fails when the two differ.
 */

export const MAGIC = 0x47535231; // "GSR1"
export const VERSION = 1;
export const HEADER_BYTES = 24;
export const CHUNK_BYTES = 1 << 20;
export const MAX_PAYLOAD = CHUNK_BYTES + 64;
export const KEY_BYTES = 32;
export const MAX_NAME = 4096;
export const MAX_PARAMS = 256;
export const MAX_MODULE_BYTES = 2 ** 30;

export const FLAG_REPLY = 0x1;
export const FLAG_NO_REPLY = 0x2;
export const FLAG_MORE = 0x4;
export const FLAGS_KNOWN = 0x7;

/** Object ids on the wire: kind in the top byte, a sequence number below. */
export const Kind = { context: 1, module: 2, function: 3, stream: 4, event: 5, library: 6 } as const;

/**
 * A payload's fields in order: 'u' u32, 'i' i32, 'q' u64, 'b' blob (u32 length + bytes).
 * null: raw bytes (DATA).
 */
export type Schema = string | null;

/** [name, number, request schema, success reply schema]: proto.h's GSR_OP_LIST, in its order. */
const OP_LIST = [
  ['HELLO', 1, 'uuub', 'uuu'],
  ['PING', 2, '', ''],
  ['DATA', 3, null, null],
  ['DRIVER_GET_VERSION', 10, '', 'i'],
  ['DEVICE_GET_COUNT', 11, '', 'i'],
  ['DEVICE_GET_NAME', 12, 'i', 'b'],
  ['DEVICE_GET_ATTRIBUTE', 13, 'ii', 'i'],
  ['DEVICE_TOTAL_MEM', 14, 'i', 'q'],
  ['DEVICE_GET_UUID', 15, 'i', 'b'],
  ['DEVICE_GET_PCI_BUS_ID', 16, 'i', 'b'],
  ['PRIMARY_CTX_RETAIN', 20, 'i', 'q'],
  ['PRIMARY_CTX_RELEASE', 21, 'i', ''],
  ['CTX_CREATE', 22, 'ui', 'q'],
  ['CTX_DESTROY', 23, 'q', ''],
  ['CTX_SYNCHRONIZE', 24, '', ''],
  ['CTX_GET_DEVICE', 25, '', 'i'],
  ['MEM_ALLOC', 30, 'q', 'q'],
  ['MEM_FREE', 31, 'q', ''],
  ['MEM_GET_INFO', 32, '', 'qq'],
  ['MEMCPY_HTOD', 33, 'qqqu', ''],
  ['MEMCPY_DTOH', 34, 'qqqu', ''],
  ['MEMCPY_DTOD', 35, 'qqqqu', ''],
  ['MEMSET_D8', 36, 'quqqu', ''],
  ['MODULE_LOAD_DATA', 40, 'q', 'q'],
  ['MODULE_UNLOAD', 41, 'q', ''],
  ['MODULE_GET_FUNCTION', 42, 'qb', 'qub'],
  ['LAUNCH_KERNEL', 43, 'quuuuuuuqb', ''],
  ['STREAM_CREATE', 50, 'u', 'q'],
  ['STREAM_DESTROY', 51, 'q', ''],
  ['STREAM_SYNCHRONIZE', 52, 'q', ''],
  ['STREAM_QUERY', 53, 'q', ''],
  ['EVENT_CREATE', 60, 'u', 'q'],
  ['EVENT_RECORD', 61, 'qq', ''],
  ['EVENT_SYNCHRONIZE', 62, 'q', ''],
  ['EVENT_QUERY', 63, 'q', ''],
  ['EVENT_ELAPSED_TIME', 64, 'qq', 'u'],
  ['EVENT_DESTROY', 65, 'q', ''],
  ['FUNC_GET_ATTRIBUTE', 70, 'qi', 'i'],
  ['FUNC_SET_ATTRIBUTE', 71, 'qii', ''],
  ['OCCUPANCY_MAX_BLOCKS', 72, 'ququ', 'i'],
  ['PRIMARY_CTX_SET_FLAGS', 73, 'iu', ''],
  ['SESSION_MEMORY', 74, 'i', 'qq'],
  ['STREAM_WAIT_EVENT', 75, 'qqu', ''],
  ['STREAM_CREATE_PRIORITY', 76, 'ui', 'q'],
  ['CTX_STREAM_PRIORITY_RANGE', 77, '', 'ii'],
  ['STREAM_GET', 78, 'qu', 'qq'],
  ['CTX_GET', 79, 'uq', 'q'],
  ['CTX_SET', 80, 'uqq', ''],
  ['EVENT_RECORD_FLAGS', 81, 'qqu', ''],
  ['POINTER_GET', 82, 'q', 'qqqq'],
  ['MODULE_GET_GLOBAL', 83, 'qb', 'qq'],
  ['LIBRARY_LOAD_DATA', 84, 'q', 'q'],
  // 100-149: cuBLAS's needs (cluster occupancy, launches with a launch configuration, TMA descriptors)
  ['OCCUPANCY_DYNAMIC_SMEM', 100, 'qii', 'q'],
  ['OCCUPANCY_CLUSTERS', 101, 'uqb', 'i'],
  ['LAUNCH_KERNEL_EX', 102, 'qbb', ''],
  ['TENSOR_MAP_ENCODE_TILED', 103, 'b', 'b'],
  ['TENSOR_MAP_REPLACE_ADDRESS', 104, 'bq', 'b'],
  // Bulk lanes (version 3, docs/remote.md "Bulk lanes"): the C client's; the SDK keeps one connection.
  ['LANES_OPEN', 150, 'u', 'ub'],
  ['LANE_HELLO', 151, 'uubb', ''],
  // Compression (version 4, docs/remote.md "Compression"): the C client's; the SDK offers version 1, so it
  // never asks and a worker never compresses for it (a compressed frame would be a protocol error here).
  ['COMPRESS', 152, 'ui', 'uu'],
] as const;

export type OpName = (typeof OP_LIST)[number][0];

/** Op numbers by name: `Op.MEM_ALLOC` is 30. */
export const Op = Object.fromEntries(OP_LIST.map(([name, number]) => [name, number])) as { readonly [K in OpName]: number };

interface OpInfo {
  readonly name: OpName;
  readonly request: Schema;
  readonly reply: Schema;
}

const BY_NUMBER = new Map<number, OpInfo>(OP_LIST.map(([name, number, request, reply]) => [number, { name, request, reply }]));

/** The op's name and schemas, or undefined for a number the protocol does not have. */
export function opInfo(op: number): OpInfo | undefined {
  return BY_NUMBER.get(op);
}

/** Every op, in proto.h's order (for the test that compares the two tables). */
export function opTable(): readonly (readonly [OpName, number, Schema, Schema])[] {
  return OP_LIST;
}
