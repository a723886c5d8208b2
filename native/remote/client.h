/*
 * client.h: the remote client library's connection (client_conn.c) as its API functions
 * (client_api.c) use it. One connection per process, opened at the first call that needs
 * the server; every exchange holds the connection's lock, so threads take turns.
 */
#ifndef GSR_CLIENT_H
#define GSR_CLIENT_H

#include "gs_cuda.h"
#include "proto.h"

#define GSR_EXPORT __attribute__((visibility("default")))

/* A function handle (CUfunction, and CUkernel: cudart 12 launches kernel handles as
 * functions) is the client's own record: the worker's id and the parameter layout. */
#define GSR_FUNC_MAGIC 0x47535246u
typedef struct gsr_function {
    uint32_t magic;
    uint64_t id;
    uint64_t module; /* the module or library it was found in, as the program holds it */
    int has_layout;
    uint32_t nparams;
    const char *name;  /* the name it was found by (cuFuncGetName), stored after the layout */
    uint32_t layout[]; /* nparams (offset, size) pairs */
} gsr_function;

/* A launch's parameters as one buffer (client_api.c): from extra's buffer, or kernelParams
 * packed by the function's layout into `packed`; *out and *out_size name the bytes to send. */
#define GSR_PACKED_PARAM_BYTES 4096u
CUresult gsr_pack_params(CUfunction f, void **kernelParams, void **extra, uint8_t packed[GSR_PACKED_PARAM_BYTES], const uint8_t **out,
                         size_t *out_size);

/* The calling thread's current context id (0: none): sent in every request header. */
uint64_t gsr_current_ctx(void);
/* Connects (once) and shakes hands; CUDA_SUCCESS, or why not: no server configured
 * (CUDA_ERROR_NO_DEVICE), or unreachable / refused / link lost (CUDA_ERROR_DEVICE_UNAVAILABLE). */
CUresult gsr_connect_once(void);
/* A synchronous call: sends `in`, waits for the reply, decodes its payload into *out. */
CUresult gsr_call(unsigned op, const gsr_args *in, gsr_args *out);
/* A synchronous call whose reply is one blob of exactly `bytes` bytes, copied into blob. */
CUresult gsr_call_blob(unsigned op, const gsr_args *in, void *blob, size_t bytes);
/* A call that returns nothing: buffered, sent with the next synchronous call (docs/remote.md). */
CUresult gsr_post(unsigned op, const gsr_args *in);
/* Host to device: the request, then the bytes as DATA frames straight from src. */
CUresult gsr_send_htod(uint64_t dst, const void *src, uint64_t bytes, uint64_t stream, int async);
/* Device to host: DATA frames received straight into dst, then the status. */
CUresult gsr_recv_dtoh(void *dst, uint64_t src, uint64_t bytes, uint64_t stream, int async);
/* A module image of `bytes` bytes, sent as DATA frames; *module gets its id. */
/* library: load it as a CUlibrary where the worker can (protocol version 5), else as a module
 * in the current context. */
CUresult gsr_send_module(const void *image, uint64_t bytes, int library, uint64_t *module);
/* The protocol version the worker answered (connecting first), 0 when unreachable. */
uint32_t gsr_worker_version(void);
/* cuModuleLoadData, or with library set cuLibraryLoadData's load (client_api.c). */
CUresult gsr_load_image(uint64_t *id, const void *image, int library);
/* The same for an image of `limit` known bytes (a file read by cuModuleLoad): its headers are
 * checked against them, a fatbin wrapper (a pointer) refused. */
CUresult gsr_load_image_within(uint64_t *id, const void *image, uint64_t limit, int library);
/* The session's retains of a device's primary context (cuDevicePrimaryCtxGetState). */
void gsr_primary_retained(CUdevice dev, int delta);
/* The private table cuGetExportTable serves for a UUID (client_export.c), its name in *name;
 * NULL when none is served. */
const void *gsr_export_table(const CUuuid *id, const char **name);
/* The device's primary context, retained once by the client for the session's life and not
 * counted as the program's retain (client_export.c). */
CUresult gsr_primary_context(CUcontext *pctx, CUdevice dev);
/* Kernels' parameter layouts from a module image's cubin (client_kparams.c), for a worker whose
 * driver reports none: learnt at load, found by kernel name, forgotten at unload. */
void gsr_kparams_learn(uint64_t module, const void *image, uint64_t bytes);
int gsr_kparams_find(uint64_t module, const char *name, uint32_t *layout, uint32_t *nparams);
void gsr_kparams_forget(uint64_t module);
/* A module image the worker refused, described into out (at most cap bytes, NUL-terminated):
 * its fatbin entries and what follows its end, for GPUSHARE_REMOTE_LOG (client_kparams.c). */
size_t gsr_describe_image(char *out, size_t cap, const void *image, uint64_t bytes);
void gsr_dump_image(const char *dir, const void *image, uint64_t bytes);
/* The device ranges of this session's allocations, reserved in this process's address space so
 * cuMemcpy can tell device from host addresses (client_unified.c). */
void gsr_device_range_add(uint64_t base, uint64_t bytes);
void gsr_device_range_remove(uint64_t base);
/* A module's or library's global (its device address and size), recorded until
 * gsr_device_globals_forget(module) at its unload. */
void gsr_device_global_add(uint64_t base, uint64_t bytes, uint64_t module);
void gsr_device_globals_forget(uint64_t module);
/* Page-locked host memory of this process (client_calls.c): cuMemHostAlloc's blocks
 * (`allocated`) and cuMemHostRegister's ranges, for cuPointerGetAttribute(s). Add returns
 * CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED for an overlap; holds gives the range holding p. */
CUresult gsr_host_range_add(void *p, size_t bytes, int allocated);
void gsr_host_range_remove(void *p);
int gsr_host_range_holds(uint64_t p, uint64_t *base, uint64_t *size);
/* A context is gone: its context-local storage is dropped, each entry's destructor called. */
void gsr_context_storage_drop(uint64_t ctx);
/* GPUSHARE_REMOTE_LOG: 0 (unset), 1 (each unserved name, table and slot once), 2 (also every
 * cuGetProcAddress and cuGetExportTable asked, every export-table slot called and every call
 * that returned an error, each time: a trace to find the first failing call). */
int gsr_log_level(void);
/* rc, after logging "call WHAT -> rc" at GPUSHARE_REMOTE_LOG=2. */
CUresult gsr_trace(const char *what, CUresult rc);
/* One stderr line per name, the first time (GPUSHARE_REMOTE_LOG=1 or 2). */
void gsr_log_once(const char *what, int *logged);

#endif /* GSR_CLIENT_H */
