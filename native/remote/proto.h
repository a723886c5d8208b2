/*
 * proto.h: the remote GPU wire format, version 1 (docs/remote.md): the frame header, the op
 * numbers, and a bounds-checked writer and reader for payloads. One codec for both ends
 * (STYLE 4): the client library and the worker encode and decode only through this.
 *
 * The reader never fails loudly: a read past the payload's end, a blob longer than what is
 * left, or a count over its cap sets `bad` and returns zeros, so a handler decodes every
 * field and checks `gsr_reader_done` once at the end (which also requires the payload to
 * be consumed exactly).
 */
#ifndef GSR_PROTO_H
#define GSR_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define GSR_MAGIC 0x47535231u /* "GSR1" */
/* Versions (docs/remote.md "Handshake"): 1, DATA frames of at most 1 MiB; 2, of at most the
 * chunk the worker's HELLO reply names (GSR_CHUNK_BYTES_V2); 3, version 2 and bulk lanes
 * (LANES_OPEN, LANE_HELLO: "Bulk lanes"); 4, version 3 and compressed copy chunks (COMPRESS,
 * GSR_FLAG_COMPRESSED: "Compression"); 5, version 4 and libraries (LIBRARY_LOAD_DATA: a
 * CUlibrary on the worker, loaded as the driver loads one, "Libraries"). Both ends speak all; the HELLO reply names the
 * highest both know, so an old client or an old worker still works. */
#define GSR_VERSION 5u
#define GSR_VERSION_LANES 3u
#define GSR_VERSION_COMPRESS 4u
#define GSR_VERSION_LIBRARY 5u
#define GSR_VERSION_MIN 1u
#define GSR_HEADER_BYTES 24u
#define GSR_CHUNK_BYTES (1u << 20)
#define GSR_CHUNK_BYTES_V2 (4u << 20)
/* A request's or reply's payload; DATA frames may be up to GSR_MAX_DATA (the v2 chunk). */
#define GSR_MAX_PAYLOAD (GSR_CHUNK_BYTES + 64u)
#define GSR_MAX_DATA GSR_CHUNK_BYTES_V2
#define GSR_KEY_BYTES 32u
#define GSR_MAX_NAME 4096u
#define GSR_MAX_PARAMS 256u
#define GSR_MAX_MODULE_BYTES (1ull << 30)
/* Bulk lanes: at most this many data connections beside the control one; the token the
 * worker's LANES_OPEN reply gives, which each lane presents with the session key. */
#define GSR_MAX_LANES 16u
#define GSR_LANE_TOKEN_BYTES 16u

#define GSR_FLAG_REPLY 0x1u
#define GSR_FLAG_NO_REPLY 0x2u
#define GSR_FLAG_MORE 0x4u
/* On DATA frames only, in a session whose COMPRESS was granted: the payload is {u32 raw
 * length, the codec's bytes} (compress.h). */
#define GSR_FLAG_COMPRESSED 0x8u
#define GSR_FLAGS_KNOWN 0xfu

/* Object ids on the wire: kind in the top byte, a sequence number below (docs/remote.md). */
#define GSR_KIND_CONTEXT 1u
#define GSR_KIND_MODULE 2u
#define GSR_KIND_FUNCTION 3u
#define GSR_KIND_STREAM 4u
#define GSR_KIND_EVENT 5u
#define GSR_KIND_LIBRARY 6u /* a module's ops take a library's id too */
#define GSR_ID_KIND(id) ((unsigned)((id) >> 56))

/*
 * X(name, number, request, reply): one list, expanded into the enum, the name table and the
 * payload schemas. A schema is the payload's fields in order: 'u' u32, 'i' i32, 'q' u64,
 * 'b' blob (u32 length + bytes). NULL: raw bytes (DATA). Error replies (status != 0) carry
 * no payload. Example: MEMCPY_HTOD "qqqu" = {u64 dst, u64 bytes, u64 stream, u32 async}.
 */
#define GSR_OP_LIST(X) \
    X(HELLO, 1, "uuub", "uuu") \
    X(PING, 2, "", "") \
    X(DATA, 3, NULL, NULL) \
    X(DRIVER_GET_VERSION, 10, "", "i") \
    X(DEVICE_GET_COUNT, 11, "", "i") \
    X(DEVICE_GET_NAME, 12, "i", "b") \
    X(DEVICE_GET_ATTRIBUTE, 13, "ii", "i") \
    X(DEVICE_TOTAL_MEM, 14, "i", "q") \
    X(DEVICE_GET_UUID, 15, "i", "b") \
    X(DEVICE_GET_PCI_BUS_ID, 16, "i", "b") \
    X(PRIMARY_CTX_RETAIN, 20, "i", "q") \
    X(PRIMARY_CTX_RELEASE, 21, "i", "") \
    X(CTX_CREATE, 22, "ui", "q") \
    X(CTX_DESTROY, 23, "q", "") \
    X(CTX_SYNCHRONIZE, 24, "", "") \
    X(CTX_GET_DEVICE, 25, "", "i") \
    X(MEM_ALLOC, 30, "q", "q") \
    X(MEM_FREE, 31, "q", "") \
    X(MEM_GET_INFO, 32, "", "qq") \
    X(MEMCPY_HTOD, 33, "qqqu", "") \
    X(MEMCPY_DTOH, 34, "qqqu", "") \
    X(MEMCPY_DTOD, 35, "qqqqu", "") \
    X(MEMSET_D8, 36, "quqqu", "") \
    X(MODULE_LOAD_DATA, 40, "q", "q") \
    X(MODULE_UNLOAD, 41, "q", "") \
    X(MODULE_GET_FUNCTION, 42, "qb", "qub") \
    X(LAUNCH_KERNEL, 43, "quuuuuuuqb", "") \
    X(STREAM_CREATE, 50, "u", "q") \
    X(STREAM_DESTROY, 51, "q", "") \
    X(STREAM_SYNCHRONIZE, 52, "q", "") \
    X(STREAM_QUERY, 53, "q", "") \
    X(EVENT_CREATE, 60, "u", "q") \
    X(EVENT_RECORD, 61, "qq", "") \
    X(EVENT_SYNCHRONIZE, 62, "q", "") \
    X(EVENT_QUERY, 63, "q", "") \
    X(EVENT_ELAPSED_TIME, 64, "qq", "u") \
    X(EVENT_DESTROY, 65, "q", "") \
    X(FUNC_GET_ATTRIBUTE, 70, "qi", "i") \
    X(FUNC_SET_ATTRIBUTE, 71, "qii", "") \
    X(OCCUPANCY_MAX_BLOCKS, 72, "ququ", "i") \
    X(PRIMARY_CTX_SET_FLAGS, 73, "iu", "") \
    X(SESSION_MEMORY, 74, "i", "qq") \
    X(STREAM_WAIT_EVENT, 75, "qqu", "") \
    X(STREAM_CREATE_PRIORITY, 76, "ui", "q") \
    X(CTX_STREAM_PRIORITY_RANGE, 77, "", "ii") \
    X(STREAM_GET, 78, "qu", "qq") \
    X(CTX_GET, 79, "uq", "q") \
    X(CTX_SET, 80, "uqq", "") \
    X(EVENT_RECORD_FLAGS, 81, "qqu", "") \
    X(POINTER_GET, 82, "q", "qqqq") \
    X(MODULE_GET_GLOBAL, 83, "qb", "qq") \
    X(LIBRARY_LOAD_DATA, 84, "q", "q") \
    /* 100-149: cuBLAS's needs (helper F, session 22): occupancy with clusters, cluster launches. */ \
    X(OCCUPANCY_DYNAMIC_SMEM, 100, "qii", "q") \
    X(OCCUPANCY_CLUSTERS, 101, "uqb", "i") \
    X(LAUNCH_KERNEL_EX, 102, "qbb", "") \
    X(TENSOR_MAP_ENCODE_TILED, 103, "b", "b") \
    X(TENSOR_MAP_REPLACE_ADDRESS, 104, "bq", "b") \
    X(LANES_OPEN, 150, "u", "ub") \
    X(LANE_HELLO, 151, "uubb", "") \
    X(COMPRESS, 152, "ui", "uu")

/* A launch configuration (CUlaunchConfig) as OCCUPANCY_CLUSTERS and LAUNCH_KERNEL_EX carry it
 * in their first blob, little-endian: u32 grid x y z, block x y z, shared bytes, attribute
 * count, u64 stream id; then per attribute u32 id, u32 0, its 64 value bytes as cuda.h lays
 * them out. OCCUPANCY_CLUSTERS's u32: 0 cuOccupancyMaxActiveClusters, 1
 * cuOccupancyMaxPotentialClusterSize. */
#define GSR_LAUNCH_HEAD_BYTES 40u
#define GSR_LAUNCH_ATTR_BYTES 72u
#define GSR_MAX_LAUNCH_ATTRS 16u
#define GSR_CLUSTERS_MAX_ACTIVE 0u
#define GSR_CLUSTERS_MAX_SIZE 1u
/* TENSOR_MAP_ENCODE_TILED's blob, little-endian: u32 data type, rank (1..5), interleave,
 * swizzle, L2 promotion, OOB fill; u64 global address; u64 globalDim[5], globalStrides[4];
 * u32 boxDim[5], elementStrides[5] (unused entries 0). Both replies: the 128-byte CUtensorMap. */
#define GSR_TENSOR_MAP_BYTES 128u
#define GSR_TENSOR_MAP_ARGS_BYTES (6u * 4u + 8u + 9u * 8u + 10u * 4u)

/* What STREAM_GET asks of a stream (docs/remote.md "Queries"): v[0] (and v[1]) of its reply. */
#define GSR_STREAM_CAPTURE 0u  /* capture status, capture id */
#define GSR_STREAM_PRIORITY 1u
#define GSR_STREAM_FLAGS 2u
#define GSR_STREAM_ID 3u
#define GSR_STREAM_CTX 4u      /* the id of its context */
#define GSR_STREAM_DEVICE 5u
/* What CTX_GET asks (CTX_SET sets the first two) of the current context; arg: the CUlimit. */
#define GSR_CTX_LIMIT 0u
#define GSR_CTX_CACHE_CONFIG 1u
#define GSR_CTX_FLAGS 2u
#define GSR_CTX_API_VERSION 3u
#define GSR_CTX_ID 4u

#define GSR_OP_ENUM_ITEM(name, number, request, reply) GSR_OP_##name = number,
typedef enum gsr_op { GSR_OP_LIST(GSR_OP_ENUM_ITEM) } gsr_op;
#undef GSR_OP_ENUM_ITEM

typedef struct gsr_header {
    uint32_t length;
    uint16_t op;
    uint16_t flags;
    uint32_t id;
    int32_t status;
    uint64_t ctx;
} gsr_header;

#define GSR_MAX_SCALARS 10
#define GSR_MAX_BLOBS 2

/* A payload decoded by its schema: scalars and blobs in the order they appear. Blobs point
 * into the decoded buffer (not copied). */
typedef struct gsr_args {
    uint64_t v[GSR_MAX_SCALARS];
    const uint8_t *blob[GSR_MAX_BLOBS];
    size_t blob_len[GSR_MAX_BLOBS];
    unsigned nv, nblob;
} gsr_args;

/* Stable codes of codec failures (0: fine). */
typedef enum gsr_error {
    GSR_OK = 0,
    GSR_ERR_LENGTH = 1,  /* payload length over GSR_MAX_PAYLOAD */
    GSR_ERR_OP = 2,      /* unknown op number */
    GSR_ERR_FLAGS = 3,   /* unknown flag bits */
    GSR_ERR_PAYLOAD = 4, /* a field past the end, a blob too long, bytes left over */
} gsr_error;

/* The op's name ("MEM_ALLOC"), or NULL for an unknown number. */
const char *gsr_op_name(unsigned op);
void gsr_header_encode(const gsr_header *h, uint8_t out[GSR_HEADER_BYTES]);
/* Decodes and validates (length cap: GSR_MAX_DATA for DATA, else GSR_MAX_PAYLOAD; known op,
 * known flags, GSR_FLAG_COMPRESSED on DATA only). */
gsr_error gsr_header_decode(const uint8_t in[GSR_HEADER_BYTES], gsr_header *h);

/* A payload being written into a caller's buffer; overflow sets `bad` (nothing written past cap). */
typedef struct gsr_writer {
    uint8_t *buf;
    size_t cap;
    size_t len;
    int bad;
} gsr_writer;

void gsr_writer_init(gsr_writer *w, uint8_t *buf, size_t cap);
void gsr_put_u32(gsr_writer *w, uint32_t v);
void gsr_put_i32(gsr_writer *w, int32_t v);
void gsr_put_u64(gsr_writer *w, uint64_t v);
void gsr_put_blob(gsr_writer *w, const void *data, size_t n);

typedef struct gsr_reader {
    const uint8_t *buf;
    size_t len;
    size_t pos;
    int bad;
} gsr_reader;

void gsr_reader_init(gsr_reader *r, const uint8_t *buf, size_t len);
uint32_t gsr_get_u32(gsr_reader *r);
int32_t gsr_get_i32(gsr_reader *r);
uint64_t gsr_get_u64(gsr_reader *r);
/* A blob of at most `max` bytes: points into the payload (not copied); *n its length. */
const uint8_t *gsr_get_blob(gsr_reader *r, size_t max, size_t *n);
/* GSR_OK when every read stayed in bounds and the payload was consumed exactly. */
gsr_error gsr_reader_done(const gsr_reader *r);

/* The schema of an op's request (reply != 0: its success reply); NULL for DATA or unknown. */
const char *gsr_schema(unsigned op, int reply);
/* Decodes a payload by its op's schema: GSR_ERR_OP for unknown/raw ops, GSR_ERR_PAYLOAD when
 * a field is out of bounds or bytes are left over; i32 fields are sign-extended into v[]. */
gsr_error gsr_decode(unsigned op, int reply, const uint8_t *payload, size_t len, gsr_args *out);
/* Encodes `in` (nv/nblob as the schema asks) by the op's schema; w->bad on overflow or mismatch. */
void gsr_encode(unsigned op, int reply, const gsr_args *in, gsr_writer *w);

#endif /* GSR_PROTO_H */
