/*
 * remote_calls.c: the calls CuPy and PyTorch make after their start (docs/remote.md
 * "Queries" and "Answered in the client"), end to end through the client libcuda.so.1, each
 * taken as the runtime takes it (cuGetProcAddress), against a worker on the fake driver:
 * stream and context queries, events recorded with flags, pointer attributes, globals,
 * function names, host functions and callbacks, registered host memory, peers, the profiler,
 * IPC, 2D memsets. Forged handles are refused; run_remote_tests.sh checks the worker freed
 * everything.
 */
#define _DEFAULT_SOURCE
#include "client_served.h"
#include "gs_cuda.h"
#define CHECK_PROGRAM "remote_calls"
#include "runtime_check.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Every entry point here must be served: the program cannot go on without one. */
static void *need(void *fn) {
    if (!fn) exit(1);
    return fn;
}
/* As the runtime of CUDA 12.8 gets it; PT: the per-thread-default-stream form. */
#define P(type, name) __typeof__(type) p_##name = (type)need(proc(#name, 12080, 0))
#define PT(type, name) __typeof__(type) pt_##name = (type)need(proc(#name, 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM))

static int host_calls;
static void host_fn(void *user) { host_calls += *(int *)user; }
static CUresult callback_status = (CUresult)-1;
static CUstream callback_stream;
static void stream_callback(CUstream stream, CUresult status, void *user) {
    callback_status = status;
    callback_stream = stream;
    host_calls += *(int *)user;
}

#define FORGED_STREAM ((CUstream)(uintptr_t)0x0400000000000999ull)
#define FORGED_CTX ((CUcontext)(uintptr_t)0x0100000000000999ull)

/* With "driver-extras" the worker has driver_extras.c preloaded: the driver then answers the
 * context queries and gives module globals, which the fake alone does not. */
int main(int argc, char **argv) {
    /* "no-libraries": driver_extras.c preloaded with DRIVER_EXTRAS_NO_LIBRARIES=1, a worker whose
     * driver has no libraries: the client loads modules instead. */
    int no_libraries = argc > 1 && strcmp(argv[1], "no-libraries") == 0;
    int extras = no_libraries || (argc > 1 && strcmp(argv[1], "driver-extras") == 0);
    void *lib = dlopen("libcuda.so.1", RTLD_NOW);
    if (!lib || !(get_proc = (pfn_get_proc)dlsym(lib, "cuGetProcAddress_v2"))) {
        printf("remote_calls: FAIL no libcuda.so.1 / cuGetProcAddress_v2\n");
        return 1;
    }
    /* The versions the runtime asks pick the signature it was built for. */
    CHECK(proc("cuStreamGetCaptureInfo", 11020, 0) == dlsym(lib, "cuStreamGetCaptureInfo"));
    CHECK(proc("cuStreamGetCaptureInfo", 12000, 0) == dlsym(lib, "cuStreamGetCaptureInfo_v2"));
    CHECK(proc("cuStreamGetCaptureInfo", 13000, 0) == dlsym(lib, "cuStreamGetCaptureInfo_v3"));
    CHECK(proc("cuStreamGetCaptureInfo", 12080, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) == dlsym(lib, "cuStreamGetCaptureInfo_v3_ptsz"));
    CHECK(proc("cuMemHostRegister", 12080, 0) == dlsym(lib, "cuMemHostRegister_v2"));
    CHECK(proc("cuIpcOpenMemHandle", 12080, 0) == dlsym(lib, "cuIpcOpenMemHandle_v2"));

    P(CUresult(*)(unsigned), cuInit);
    P(CUresult(*)(CUcontext *, CUdevice), cuDevicePrimaryCtxRetain);
    P(CUresult(*)(CUdevice), cuDevicePrimaryCtxRelease);
    P(CUresult(*)(CUcontext), cuCtxSetCurrent);
    P(CUresult(*)(CUstream *, unsigned), cuStreamCreate);
    P(CUresult(*)(CUstream *, unsigned, int), cuStreamCreateWithPriority);
    P(CUresult(*)(CUstream), cuStreamDestroy);
    P(CUresult(*)(CUstream), cuStreamSynchronize);
    P(CUresult(*)(CUevent *, unsigned), cuEventCreate);
    P(CUresult(*)(CUevent), cuEventDestroy);
    P(CUresult(*)(CUdeviceptr *, size_t), cuMemAlloc);
    P(CUresult(*)(CUdeviceptr), cuMemFree);
    P(CUresult(*)(CUdeviceptr, const void *, size_t), cuMemcpyHtoD);
    P(CUresult(*)(void *, CUdeviceptr, size_t), cuMemcpyDtoH);
    P(CUresult(*)(CUdeviceptr, unsigned char, size_t), cuMemsetD8);

    CUdevice dev = 0;
    CUcontext ctx = NULL;
    EXPECT(p_cuInit(0), CUDA_SUCCESS);
    EXPECT(p_cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
    EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);

    /* ---- streams: capture state (asked of the worker's driver), priority, flags, id, context, device */
    P(CUresult(*)(CUstream, CUstreamCaptureStatus *), cuStreamIsCapturing);
    PT(CUresult(*)(CUstream, CUstreamCaptureStatus *), cuStreamIsCapturing);
    P(CUresult(*)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, void **, const void ***, const void **, size_t *), cuStreamGetCaptureInfo);
    CUresult (*capture_v2)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, void **, const void ***, size_t *) =
        (CUresult(*)(CUstream, CUstreamCaptureStatus *, cuuint64_t *, void **, const void ***, size_t *))need(proc("cuStreamGetCaptureInfo", 12000, 0));
    P(CUresult(*)(CUstream, int *), cuStreamGetPriority);
    P(CUresult(*)(CUstream, unsigned *), cuStreamGetFlags);
    P(CUresult(*)(CUstream, unsigned long long *), cuStreamGetId);
    P(CUresult(*)(CUstream, CUcontext *, void **), cuStreamGetCtx); /* _v2 at 12.5+: the green context too */
    CUresult (*stream_ctx_v1)(CUstream, CUcontext *) = (CUresult(*)(CUstream, CUcontext *))need(proc("cuStreamGetCtx", 12000, 0));
    void *green = &green;
    P(CUresult(*)(CUstream, CUdevice *), cuStreamGetDevice);
    CUstream s1 = NULL, s2 = NULL;
    EXPECT(p_cuStreamCreate(&s1, 1 /* NON_BLOCKING */), CUDA_SUCCESS);
    EXPECT(p_cuStreamCreateWithPriority(&s2, 0, -3), CUDA_SUCCESS);
    CUstreamCaptureStatus cs = (CUstreamCaptureStatus)7;
    EXPECT(p_cuStreamIsCapturing(s1, &cs), CUDA_SUCCESS);
    CHECK(cs == CU_STREAM_CAPTURE_STATUS_NONE);
    cs = (CUstreamCaptureStatus)7;
    EXPECT(p_cuStreamIsCapturing(NULL, &cs), CUDA_SUCCESS);
    CHECK(cs == CU_STREAM_CAPTURE_STATUS_NONE);
    cs = (CUstreamCaptureStatus)7;
    EXPECT(pt_cuStreamIsCapturing(NULL, &cs), CUDA_SUCCESS);
    CHECK(cs == CU_STREAM_CAPTURE_STATUS_NONE);
    EXPECT(p_cuStreamIsCapturing(s1, NULL), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuStreamIsCapturing(FORGED_STREAM, &cs), CUDA_ERROR_INVALID_HANDLE);
    cuuint64_t cid = 99;
    void *graph = &cid;
    const void **deps = (const void **)&cid, *edges = &cid;
    size_t ndeps = 9;
    EXPECT(p_cuStreamGetCaptureInfo(s2, &cs, &cid, &graph, &deps, &edges, &ndeps), CUDA_SUCCESS);
    CHECK(cs == CU_STREAM_CAPTURE_STATUS_NONE && graph == NULL && deps == NULL && edges == NULL && ndeps == 0);
    ndeps = 9;
    EXPECT(capture_v2(s2, &cs, NULL, NULL, NULL, &ndeps), CUDA_SUCCESS);
    CHECK(ndeps == 0);
    int prio = 1;
    unsigned sflags = 9;
    unsigned long long id1 = 0, id2 = 0;
    CUcontext sctx = NULL;
    CUdevice sdev = -1;
    EXPECT(p_cuStreamGetPriority(s2, &prio), CUDA_SUCCESS);
    CHECK(prio == -3);
    EXPECT(p_cuStreamGetPriority(NULL, &prio), CUDA_SUCCESS);
    CHECK(prio == 0);
    EXPECT(p_cuStreamGetFlags(s1, &sflags), CUDA_SUCCESS);
    CHECK(sflags == 1);
    EXPECT(p_cuStreamGetFlags(s2, &sflags), CUDA_SUCCESS);
    CHECK(sflags == 0);
    EXPECT(p_cuStreamGetId(s1, &id1), CUDA_SUCCESS);
    EXPECT(p_cuStreamGetId(s2, &id2), CUDA_SUCCESS);
    CHECK(id1 != 0 && id2 != 0 && id1 != id2);
    EXPECT(p_cuStreamGetCtx(s1, &sctx, &green), CUDA_SUCCESS);
    CHECK(sctx == ctx && green == NULL);
    sctx = NULL;
    EXPECT(stream_ctx_v1(NULL, &sctx), CUDA_SUCCESS);
    CHECK(sctx == ctx);
    EXPECT(p_cuStreamGetDevice(s2, &sdev), CUDA_SUCCESS);
    CHECK(sdev == dev);
    EXPECT(p_cuStreamGetPriority(FORGED_STREAM, &prio), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(stream_ctx_v1(FORGED_STREAM, &sctx), CUDA_ERROR_INVALID_HANDLE);

    /* ---- the current context: what the worker's driver answers (the fake alone has no
     * limits, cache preference, flags or API version: NOT_SUPPORTED comes back, not a guess);
     * ids. */
    P(CUresult(*)(size_t *, int), cuCtxGetLimit);
    P(CUresult(*)(int, size_t), cuCtxSetLimit);
    P(CUresult(*)(int *), cuCtxGetCacheConfig);
    P(CUresult(*)(int), cuCtxSetCacheConfig);
    P(CUresult(*)(unsigned *), cuCtxGetFlags);
    P(CUresult(*)(CUcontext, unsigned *), cuCtxGetApiVersion);
    P(CUresult(*)(CUcontext, unsigned long long *), cuCtxGetId);
    size_t limit = 0;
    int config = 0;
    unsigned cflags = 0, api = 0;
    unsigned long long cid1 = 0, cid2 = 0;
    CUresult driver_has = extras ? CUDA_SUCCESS : CUDA_ERROR_NOT_SUPPORTED;
    EXPECT(p_cuCtxSetLimit(0 /* STACK_SIZE */, 4096), driver_has);
    EXPECT(p_cuCtxGetLimit(&limit, 0), driver_has);
    EXPECT(p_cuCtxSetCacheConfig(1), driver_has);
    EXPECT(p_cuCtxGetCacheConfig(&config), driver_has);
    EXPECT(p_cuCtxGetFlags(&cflags), driver_has);
    EXPECT(p_cuCtxGetApiVersion(NULL, &api), driver_has);
    if (extras) CHECK(limit == 4096 && config == 1 && cflags == 0x8 && api == 3020);
    EXPECT(p_cuCtxGetApiVersion(FORGED_CTX, &api), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT(p_cuCtxGetLimit(NULL, 0), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuCtxGetId(NULL, &cid1), CUDA_SUCCESS);
    EXPECT(p_cuCtxGetId(ctx, &cid2), CUDA_SUCCESS);
    CHECK(cid1 != 0 && cid1 == cid2);
    /* TOOLS_CONTEXT's slot 4 (cuBLASLt 13's context number): the context's id. */
    P(CUresult(*)(const void **, const CUuuid *), cuGetExportTable);
    static const CUuuid tools_context = {{0x21, 0x31, (char)0x8c, 0x60, (char)0x97, 0x14, 0x32, 0x48, (char)0x8c, (char)0xa6, 0x41,
                                          (char)0xff, 0x73, 0x24, (char)0xc8, (char)0xf2}};
    const void *tc_table = NULL;
    EXPECT(p_cuGetExportTable(&tc_table, &tools_context), CUDA_SUCCESS);
    if (tc_table) {
        CUresult (*context_number)(CUcontext, unsigned long long *) = (CUresult(*)(CUcontext, unsigned long long *))((void *const *)tc_table)[4];
        unsigned long long number = 0;
        EXPECT(context_number(ctx, &number), CUDA_SUCCESS);
        CHECK(number == cid1);
        number = 0;
        EXPECT(context_number(NULL, &number), CUDA_SUCCESS);
        CHECK(number == cid1);
        EXPECT(context_number(FORGED_CTX, &number), CUDA_ERROR_INVALID_CONTEXT);
        EXPECT(context_number(ctx, NULL), CUDA_ERROR_INVALID_VALUE);
    }
    EXPECT(p_cuCtxGetId(FORGED_CTX, &cid2), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT(p_cuCtxSetCurrent(NULL), CUDA_SUCCESS);
    EXPECT(p_cuCtxGetId(NULL, &cid2), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT(p_cuStreamIsCapturing(s1, &cs), CUDA_ERROR_INVALID_CONTEXT);
    EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);

    /* ---- events recorded with flags: sent without reply, errors at the next synchronize */
    P(CUresult(*)(CUevent, CUstream, unsigned), cuEventRecordWithFlags);
    CUevent ev = NULL;
    EXPECT(p_cuEventCreate(&ev, 0), CUDA_SUCCESS);
    EXPECT(p_cuEventRecordWithFlags(ev, s1, 0), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(s1), CUDA_SUCCESS);
    EXPECT(p_cuEventRecordWithFlags(ev, s1, 1 /* EXTERNAL: the fake cannot */), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(s1), CUDA_ERROR_NOT_SUPPORTED);
    EXPECT(p_cuEventRecordWithFlags((CUevent)(uintptr_t)0x0500000000000999ull, s1, 0), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(s1), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuEventRecordWithFlags(ev, FORGED_STREAM, 0), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(s1), CUDA_ERROR_INVALID_HANDLE);

    /* ---- pointer attributes: the session's device memory, and host memory */
    P(CUresult(*)(void *, int, CUdeviceptr), cuPointerGetAttribute);
    P(CUresult(*)(unsigned, int *, void **, CUdeviceptr), cuPointerGetAttributes);
    CUdeviceptr buf = 0;
    EXPECT(p_cuMemAlloc(&buf, 1 << 20), CUDA_SUCCESS);
    unsigned mtype = 0, managed = 7;
    CUcontext pctx = NULL;
    int ordinal = -1;
    CUdeviceptr start = 0, dptr = 0;
    size_t range = 0;
    unsigned long long buffer_id = 0;
    EXPECT(p_cuPointerGetAttribute(&mtype, 2 /* MEMORY_TYPE */, buf + 100), CUDA_SUCCESS);
    CHECK(mtype == 2 /* DEVICE */);
    EXPECT(p_cuPointerGetAttribute(&pctx, 1 /* CONTEXT */, buf + 100), CUDA_SUCCESS);
    CHECK(pctx == ctx);
    EXPECT(p_cuPointerGetAttribute(&ordinal, 9 /* DEVICE_ORDINAL */, buf), CUDA_SUCCESS);
    CHECK(ordinal == dev);
    EXPECT(p_cuPointerGetAttribute(&start, 11 /* RANGE_START_ADDR */, buf + 4095), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&range, 12 /* RANGE_SIZE */, buf + 4095), CUDA_SUCCESS);
    CHECK(start == buf && range == 1 << 20);
    EXPECT(p_cuPointerGetAttribute(&managed, 8 /* IS_MANAGED */, buf), CUDA_SUCCESS);
    CHECK(managed == 0);
    EXPECT(p_cuPointerGetAttribute(&buffer_id, 7 /* BUFFER_ID */, buf), CUDA_SUCCESS);
    CHECK(buffer_id != 0);
    EXPECT(p_cuPointerGetAttribute(&dptr, 4 /* HOST_POINTER */, buf), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuPointerGetAttribute(&mtype, 2, buf + (1 << 20)), CUDA_ERROR_INVALID_VALUE); /* just past the end */
    int on_stack = 0;
    EXPECT(p_cuPointerGetAttribute(&mtype, 2, (CUdeviceptr)(uintptr_t)&on_stack), CUDA_ERROR_INVALID_VALUE);
    int attrs[] = {1, 2, 3, 4, 8, 9};
    void *host_ptr = &on_stack;
    pctx = ctx, mtype = 5, dptr = 1, managed = 5, ordinal = 5;
    void *data[] = {&pctx, &mtype, &dptr, &host_ptr, &managed, &ordinal};
    EXPECT(p_cuPointerGetAttributes(6, attrs, data, (CUdeviceptr)(uintptr_t)&on_stack), CUDA_SUCCESS); /* host: NULL values */
    CHECK(pctx == NULL && mtype == 0 && dptr == 0 && host_ptr == NULL && managed == 0 && ordinal == -2);
    EXPECT(p_cuPointerGetAttributes(6, attrs, data, buf + 8), CUDA_SUCCESS);
    CHECK(pctx == ctx && mtype == 2 && dptr == buf + 8 && host_ptr == NULL && managed == 0 && ordinal == dev);

    /* ---- globals (the fake has none to give: NOT_SUPPORTED; a forged module refused first),
     * function and kernel names */
    P(CUresult(*)(CUdeviceptr *, size_t *, CUmodule, const char *), cuModuleGetGlobal);
    P(CUresult(*)(CUdeviceptr *, size_t *, CUlibrary, const char *), cuLibraryGetGlobal);
    P(CUresult(*)(CUlibrary *, const void *, void *, void **, unsigned, void *, void **, unsigned), cuLibraryLoadData);
    P(CUresult(*)(CUlibrary), cuLibraryUnload);
    P(CUresult(*)(CUkernel *, CUlibrary, const char *), cuLibraryGetKernel);
    P(CUresult(*)(CUfunction *, CUkernel), cuKernelGetFunction);
    P(CUresult(*)(const char **, CUfunction), cuFuncGetName);
    P(CUresult(*)(const char **, CUkernel), cuKernelGetName);
    make_fatbin();
    CUlibrary library = NULL;
    CUkernel kernel = NULL;
    CUfunction func = NULL;
    const char *name = NULL;
    size_t gsize = 0;
    EXPECT(p_cuLibraryLoadData(&library, &wrapper, NULL, NULL, 0, NULL, NULL, 0), CUDA_SUCCESS);
    EXPECT(p_cuLibraryGetGlobal(&dptr, &gsize, library, "counter"), driver_has);
    CUdeviceptr global = 0;
    if (extras) { /* the global's range is the session's for copies, the module's to free */
        static unsigned char in[4097], out[4096];
        CUdeviceptr again = 0;
        for (size_t i = 0; i < sizeof in; i++) in[i] = (unsigned char)(i * 3 + 1);
        global = dptr;
        CHECK(global != 0 && gsize == 4096);
        EXPECT(p_cuModuleGetGlobal(&again, &gsize, (CUmodule)library, "counter"), CUDA_SUCCESS);
        CHECK(again == global);
        EXPECT(p_cuModuleGetGlobal(&again, &gsize, (CUmodule)library, "missing"), CUDA_ERROR_NOT_FOUND);
        EXPECT(p_cuMemcpyHtoD(global, in, 4096), CUDA_SUCCESS);
        EXPECT(p_cuMemcpyDtoH(out, global, 4096), CUDA_SUCCESS);
        CHECK(memcmp(in, out, 4096) == 0);
        EXPECT(p_cuMemcpyHtoD(global, in, 4097), CUDA_ERROR_INVALID_VALUE); /* one byte past it */
        /* cudaMemcpyToSymbol with cudaMemcpyDefault: the global is a device address to cuMemcpy
         * (a host-to-host memmove there would read or write whatever this process has at that
         * address), unless this process happens to have memory on its page: then refused. */
        P(CUresult(*)(CUdeviceptr, CUdeviceptr, size_t), cuMemcpy);
        unsigned char vec;
        int clash = 0; /* any page of the 4096 bytes, as the client checks them (two where unaligned) */
        for (CUdeviceptr pg = global & ~(CUdeviceptr)4095; pg < global + 4096; pg += 4096)
            clash |= mincore((void *)(uintptr_t)pg, 4096, &vec) == 0;
        memset(out, 0, sizeof out);
        EXPECT(p_cuMemcpy(global, (CUdeviceptr)(uintptr_t)(in + 1), 4096), clash ? CUDA_ERROR_NOT_SUPPORTED : CUDA_SUCCESS);
        EXPECT(p_cuMemcpy((CUdeviceptr)(uintptr_t)out, global, 4096), clash ? CUDA_ERROR_NOT_SUPPORTED : CUDA_SUCCESS);
        CHECK(clash || memcmp(in + 1, out, 4096) == 0);
        EXPECT(p_cuMemFree(global), CUDA_ERROR_INVALID_VALUE);               /* not the program's to free */
        EXPECT(p_cuPointerGetAttribute(&range, 12 /* RANGE_SIZE */, global + 10), CUDA_SUCCESS);
        CHECK(range == 4096);
    }
    EXPECT(p_cuModuleGetGlobal(&dptr, &gsize, (CUmodule)(uintptr_t)0x0200000000000999ull, "counter"), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuModuleGetGlobal(&dptr, &gsize, (CUmodule)library, ""), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuLibraryGetKernel(&kernel, library, "sleep_1000"), CUDA_SUCCESS);
    EXPECT(p_cuKernelGetFunction(&func, kernel), CUDA_SUCCESS);
    EXPECT(p_cuKernelGetName(&name, kernel), CUDA_SUCCESS);
    CHECK(name && strcmp(name, "sleep_1000") == 0);
    name = NULL;
    EXPECT(p_cuFuncGetName(&name, func), CUDA_SUCCESS);
    CHECK(name && strcmp(name, "sleep_1000") == 0);
    EXPECT(p_cuFuncGetName(&name, (CUfunction)&on_stack), CUDA_ERROR_INVALID_HANDLE);

    /* ---- names libraries take with dlsym (cuBLASLt 13 at cublasCreate: one missing and it
     * does not start): every one exported; these three answered, the others NOT_SUPPORTED */
    static const char *const raw_names[] = {
        "cuCtxDisablePeerAccess", "cuCtxEnablePeerAccess", "cuGraphExecKernelNodeSetParams", "cuGraphInstantiate",
        "cuGraphKernelNodeGetParams", "cuKernelGetLibrary", "cuLinkAddData_v2", "cuLinkAddFile_v2", "cuLinkComplete",
        "cuLinkCreate_v2", "cuLinkDestroy", "cuModuleLoad", "cuOccupancyMaxPotentialBlockSize", "cuStreamBatchMemOp",
        "cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuStreamWaitValue32",
    };
    for (size_t i = 0; i < sizeof raw_names / sizeof raw_names[0]; i++) {
        if (!dlsym(lib, raw_names[i])) {
            printf("remote_calls: FAIL %s is not exported\n", raw_names[i]);
            failures++;
        }
    }
    CUresult (*raw_kernel_library)(CUlibrary *, CUkernel) = (CUresult(*)(CUlibrary *, CUkernel))need(dlsym(lib, "cuKernelGetLibrary"));
    CUlibrary of_kernel = NULL;
    EXPECT(raw_kernel_library(&of_kernel, kernel), CUDA_SUCCESS);
    CHECK(of_kernel == library);
    EXPECT(raw_kernel_library(&of_kernel, (CUkernel)&on_stack), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(raw_kernel_library(NULL, kernel), CUDA_ERROR_INVALID_VALUE);
    P(CUresult(*)(CUmodule), cuModuleUnload);
    CUresult (*raw_module_load)(CUmodule *, const char *) = (CUresult(*)(CUmodule *, const char *))need(dlsym(lib, "cuModuleLoad"));
    char image_path[] = "/tmp/remote_calls_image_XXXXXX";
    int image_fd = mkstemp(image_path);
    CHECK(image_fd >= 0);
    CUmodule from_file = NULL;
    if (image_fd >= 0) { /* the file's bytes are what the worker's driver judges: the fake refuses "nobinary" */
        CHECK(write(image_fd, "nobinary image", 14) == 14);
        close(image_fd);
        EXPECT(raw_module_load(&from_file, image_path), CUDA_ERROR_NO_BINARY_FOR_GPU);
        image_fd = open(image_path, O_WRONLY | O_TRUNC);
        CHECK(image_fd >= 0 && write(image_fd, "// from a file\n", 15) == 15);
        if (image_fd >= 0) close(image_fd);
        EXPECT(raw_module_load(&from_file, image_path), CUDA_SUCCESS);
        CHECK(from_file != NULL);
        EXPECT(p_cuModuleUnload(from_file), CUDA_SUCCESS);
        unlink(image_path);
    }
    /* A file is not the program's memory: headers that claim more than it holds, a fatbin
     * wrapper (a pointer), a file too short for any header: refused, and the session goes on. */
    static unsigned char wrapper_file[24] = {0xB1, 0x43, 0x62, 0x46, 1, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 0xef, 0xbe, 0xad, 0xde};
    static unsigned char elf_file[64] = {0x7f, 'E', 'L', 'F', 2, 1, 1};
    static unsigned char fatbin_file[32] = {0x50, 0xED, 0x55, 0xBA, 1, 0, 16, 0};
    uint64_t far = 1ull << 40, claimed = 512ull << 20;
    uint16_t shentsize = 0x40, shnum = 4;
    memcpy(elf_file + 0x28, &far, 8);
    memcpy(elf_file + 0x3a, &shentsize, 2);
    memcpy(elf_file + 0x3c, &shnum, 2);
    memcpy(fatbin_file + 8, &claimed, 8);
    const struct {
        const void *bytes;
        size_t n;
    } bad_files[] = {{wrapper_file, sizeof wrapper_file}, {elf_file, sizeof elf_file}, {fatbin_file, sizeof fatbin_file}, {"//", 2}};
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        char bad_path[] = "/tmp/remote_calls_bad_XXXXXX";
        int fd = mkstemp(bad_path);
        CHECK(fd >= 0);
        if (fd < 0) continue;
        CHECK(write(fd, bad_files[i].bytes, bad_files[i].n) == (ssize_t)bad_files[i].n);
        close(fd);
        from_file = NULL;
        EXPECT(raw_module_load(&from_file, bad_path), CUDA_ERROR_INVALID_IMAGE);
        CHECK(from_file == NULL);
        unlink(bad_path);
    }
    EXPECT(p_cuCtxGetId(NULL, &cid2), CUDA_SUCCESS); /* the session is still there */
    EXPECT(raw_module_load(&from_file, "/nonexistent/remote_calls.cubin"), CUDA_ERROR_FILE_NOT_FOUND);
    EXPECT(raw_module_load(NULL, image_path), CUDA_ERROR_INVALID_VALUE);
    CUresult (*raw_instantiate)(CUgraphExec *, CUgraph, CUgraphNode *, char *, size_t) =
        (CUresult(*)(CUgraphExec *, CUgraph, CUgraphNode *, char *, size_t))need(dlsym(lib, "cuGraphInstantiate"));
    CUresult (*with_flags)(CUgraphExec *, CUgraph, unsigned long long) =
        (CUresult(*)(CUgraphExec *, CUgraph, unsigned long long))need(dlsym(lib, "cuGraphInstantiateWithFlags"));
    CUgraphExec exec = NULL;
    CUgraphNode error_node = (CUgraphNode)&on_stack;
    char graph_log[64];
    memset(graph_log, 'x', sizeof graph_log);
    CUresult expected = with_flags(&exec, NULL, 0); /* what the client does with flags 0 */
    EXPECT(raw_instantiate(&exec, NULL, &error_node, graph_log, sizeof graph_log), expected);
    CHECK(error_node == NULL && memchr(graph_log, 0, sizeof graph_log) != NULL);
    CHECK(expected == CUDA_SUCCESS ? graph_log[0] == 0 : strncmp(graph_log, "CUDA_ERROR_", 11) == 0);

    /* ---- an image with no code for this GPU (the fake's "nobinary"): a module refuses it at
     * load; a library takes it, as cuBLAS's fatbins for other GPUs are taken, and refuses only
     * a kernel of it, at cuLibraryGetKernel or at cuKernelGetFunction */
    P(CUresult(*)(CUmodule *, const void *), cuModuleLoadData);
    CUmodule no_module = NULL;
    CUlibrary no_binary = NULL;
    CUkernel no_kernel = NULL;
    CUfunction no_func = NULL;
    EXPECT(p_cuModuleLoadData(&no_module, "nobinary image"), CUDA_ERROR_NO_BINARY_FOR_GPU);
    if (no_libraries) { /* a module after all: refused at load */
        EXPECT(p_cuLibraryLoadData(&no_binary, "nobinary image", NULL, NULL, 0, NULL, NULL, 0), CUDA_ERROR_NO_BINARY_FOR_GPU);
    } else {
        EXPECT(p_cuLibraryLoadData(&no_binary, "nobinary image", NULL, NULL, 0, NULL, NULL, 0), CUDA_SUCCESS);
        CUresult no_rc = p_cuLibraryGetKernel(&no_kernel, no_binary, "sleep_1000");
        if (no_rc == CUDA_SUCCESS) no_rc = p_cuKernelGetFunction(&no_func, no_kernel);
        EXPECT(no_rc, CUDA_ERROR_NO_BINARY_FOR_GPU);
        EXPECT(p_cuLibraryUnload(no_binary), CUDA_SUCCESS);
    }

    /* ---- host functions and callbacks: run here once the stream reached them */
    P(CUresult(*)(CUstream, gsr_host_fn, void *), cuLaunchHostFunc);
    P(CUresult(*)(CUstream, gsr_stream_callback, void *, unsigned), cuStreamAddCallback);
    int one = 1, ten = 10;
    EXPECT(p_cuMemsetD8(buf, 0, 1 << 20), CUDA_SUCCESS);
    EXPECT(p_cuLaunchHostFunc(s1, host_fn, &one), CUDA_SUCCESS);
    CHECK(host_calls == 1);
    EXPECT(p_cuStreamAddCallback(s2, stream_callback, &ten, 0), CUDA_SUCCESS);
    CHECK(host_calls == 11 && callback_status == CUDA_SUCCESS && callback_stream == s2);
    EXPECT(p_cuStreamAddCallback(s2, stream_callback, &ten, 1), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuLaunchHostFunc(FORGED_STREAM, host_fn, &one), CUDA_ERROR_INVALID_HANDLE);
    EXPECT(p_cuStreamAddCallback(FORGED_STREAM, stream_callback, &ten, 0), CUDA_ERROR_INVALID_HANDLE);
    CHECK(host_calls == 11); /* neither called for a stream that is not the session's */

    /* ---- registered host memory: a registry here; copies from it are host memory */
    P(CUresult(*)(void *, size_t, unsigned), cuMemHostRegister);
    P(CUresult(*)(void *), cuMemHostUnregister);
    P(CUresult(*)(CUdeviceptr *, void *, unsigned), cuMemHostGetDevicePointer);
    unsigned char *host = malloc(8192), back[4096];
    CHECK(host != NULL);
    for (int i = 0; i < 8192; i++) host[i] = (unsigned char)(i * 5 + 1);
    EXPECT(p_cuMemHostRegister(host, 8192, 0), CUDA_SUCCESS);
    EXPECT(p_cuMemHostRegister(host + 4096, 100, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    EXPECT(p_cuMemcpyHtoD(buf, host + 4096, 4096), CUDA_SUCCESS);
    EXPECT(p_cuMemcpyDtoH(back, buf, 4096), CUDA_SUCCESS);
    CHECK(memcmp(back, host + 4096, 4096) == 0);
    EXPECT(p_cuMemHostGetDevicePointer(&dptr, host, 0), CUDA_ERROR_NOT_SUPPORTED);
    EXPECT(p_cuMemHostGetDevicePointer(&dptr, back, 0), CUDA_ERROR_INVALID_VALUE);
    mtype = 0, host_ptr = NULL, start = 0, range = 0;
    EXPECT(p_cuPointerGetAttribute(&mtype, 2 /* MEMORY_TYPE */, (CUdeviceptr)(uintptr_t)(host + 10)), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&host_ptr, 4 /* HOST_POINTER */, (CUdeviceptr)(uintptr_t)(host + 10)), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&start, 11, (CUdeviceptr)(uintptr_t)(host + 10)), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&range, 12, (CUdeviceptr)(uintptr_t)(host + 10)), CUDA_SUCCESS);
    CHECK(mtype == 1 /* HOST */ && host_ptr == host + 10 && start == (CUdeviceptr)(uintptr_t)host && range == 8192);
    EXPECT(p_cuPointerGetAttribute(&dptr, 3 /* DEVICE_POINTER */, (CUdeviceptr)(uintptr_t)host), CUDA_ERROR_INVALID_VALUE);
    EXPECT(p_cuMemHostUnregister(host + 1), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    EXPECT(p_cuMemHostUnregister(host), CUDA_SUCCESS);
    EXPECT(p_cuMemHostUnregister(host), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    EXPECT(p_cuPointerGetAttribute(&mtype, 2, (CUdeviceptr)(uintptr_t)host), CUDA_ERROR_INVALID_VALUE); /* no longer pinned */
    free(host);
    /* cuMemHostAlloc's memory is page-locked host memory too, not cuMemHostUnregister's to drop. */
    P(CUresult(*)(void **, size_t, unsigned), cuMemHostAlloc);
    P(CUresult(*)(void *), cuMemFreeHost);
    void *pinned = NULL;
    EXPECT(p_cuMemHostAlloc(&pinned, 5000, 0), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&mtype, 2, (CUdeviceptr)(uintptr_t)pinned + 4999), CUDA_SUCCESS);
    CHECK(mtype == 1);
    EXPECT(p_cuMemHostRegister(pinned, 10, 0), CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED);
    EXPECT(p_cuMemHostUnregister(pinned), CUDA_ERROR_HOST_MEMORY_NOT_REGISTERED);
    EXPECT(p_cuMemFreeHost(pinned), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&mtype, 2, (CUdeviceptr)(uintptr_t)pinned), CUDA_ERROR_INVALID_VALUE);
    /* From 2 MiB up it is 2 MiB-aligned (huge pages for the copies out of it: net.h gsr_alloc_bulk),
     * every byte usable, its range the size asked rounded to a page, as below 2 MiB. */
    void *big = NULL;
    EXPECT(p_cuMemHostAlloc(&big, (3u << 20) + 5, 0), CUDA_SUCCESS);
    CHECK(big && (uintptr_t)big % (2u << 20) == 0);
    if (big) memset(big, 0x5a, (3u << 20) + 5);
    range = 0;
    EXPECT(p_cuPointerGetAttribute(&range, 12, (CUdeviceptr)(uintptr_t)big + (3u << 20)), CUDA_SUCCESS);
    CHECK(range == (3u << 20) + 4096);
    EXPECT(p_cuMemFreeHost(big), CUDA_SUCCESS);

    /* ---- peers, the profiler, IPC */
    P(CUresult(*)(int *, CUdevice, CUdevice), cuDeviceCanAccessPeer);
    P(CUresult(*)(void), cuProfilerStart);
    P(CUresult(*)(void), cuProfilerStop);
    P(CUresult(*)(gsr_ipc_handle *, CUdeviceptr), cuIpcGetMemHandle);
    P(CUresult(*)(CUdeviceptr *, gsr_ipc_handle, unsigned), cuIpcOpenMemHandle);
    P(CUresult(*)(gsr_ipc_handle *, CUevent), cuIpcGetEventHandle);
    int peer = 7;
    EXPECT(p_cuDeviceCanAccessPeer(&peer, dev, dev), CUDA_SUCCESS);
    CHECK(peer == 0);
    EXPECT(p_cuDeviceCanAccessPeer(&peer, dev, 5), CUDA_ERROR_INVALID_DEVICE);
    EXPECT(p_cuProfilerStart(), CUDA_SUCCESS);
    EXPECT(p_cuProfilerStop(), CUDA_SUCCESS);
    gsr_ipc_handle ipc;
    memset(&ipc, 0, sizeof ipc);
    EXPECT(p_cuIpcGetMemHandle(&ipc, buf), CUDA_ERROR_NOT_SUPPORTED);
    EXPECT(p_cuIpcOpenMemHandle(&dptr, ipc, 1), CUDA_ERROR_NOT_SUPPORTED);
    EXPECT(p_cuIpcGetEventHandle(&ipc, ev), CUDA_ERROR_NOT_SUPPORTED);

    /* ---- 2D byte memsets: rows of width bytes, pitch apart */
    P(CUresult(*)(CUdeviceptr, size_t, unsigned char, size_t, size_t), cuMemsetD2D8);
    P(CUresult(*)(CUdeviceptr, size_t, unsigned char, size_t, size_t, CUstream), cuMemsetD2D8Async);
    static unsigned char grid[1024];
    EXPECT(p_cuMemsetD8(buf, 0, 1 << 20), CUDA_SUCCESS);
    EXPECT(p_cuMemsetD2D8(buf, 256, 0x11, 100, 4), CUDA_SUCCESS);
    EXPECT(p_cuMemsetD2D8Async(buf + 128, 256, 0x22, 50, 4, s1), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(s1), CUDA_SUCCESS);
    EXPECT(p_cuMemcpyDtoH(grid, buf, sizeof grid), CUDA_SUCCESS);
    int grid_ok = 1;
    for (int i = 0; i < 1024; i++) {
        int col = i % 256;
        unsigned char want = col < 100 ? 0x11 : col >= 128 && col < 178 ? 0x22 : 0;
        if (grid[i] != want) grid_ok = 0;
    }
    CHECK(grid_ok);
    EXPECT(p_cuMemsetD2D8(buf, 256, 0x33, 300, 2), CUDA_ERROR_INVALID_VALUE);               /* width over the pitch */
    EXPECT(p_cuMemsetD2D8(buf, 1 << 16, 0x33, 16, 17), CUDA_ERROR_INVALID_VALUE);           /* the last row past the end */
    EXPECT(p_cuMemsetD2D8Async(buf, 1 << 10, 0x33, 1 << 10, 2048, s1), CUDA_SUCCESS);       /* contiguous: one memset, */
    EXPECT(p_cuStreamSynchronize(s1), CUDA_ERROR_INVALID_VALUE);                            /* past the end */

    /* ---- 2D copies: rows of a pitched host block into a pitched device block and back */
    P(CUresult(*)(const gsr_memcpy2d *), cuMemcpy2D);
    P(CUresult(*)(const gsr_memcpy2d *, CUstream), cuMemcpy2DAsync);
    static unsigned char h2d[64 * 40], d2h[48 * 40];
    for (size_t i = 0; i < sizeof h2d; i++) h2d[i] = (unsigned char)(i * 13 + 7);
    memset(d2h, 0xee, sizeof d2h);
    EXPECT(p_cuMemsetD8(buf, 0, 1 << 20), CUDA_SUCCESS);
    gsr_memcpy2d up = {.srcXInBytes = 4, .srcY = 2, .srcMemoryType = 1, .srcHost = h2d, .srcPitch = 64,
                       .dstXInBytes = 8, .dstY = 1, .dstMemoryType = 2, .dstDevice = buf, .dstPitch = 512,
                       .WidthInBytes = 30, .Height = 20};
    EXPECT(p_cuMemcpy2D(&up), CUDA_SUCCESS);
    gsr_memcpy2d down = {.srcXInBytes = 8, .srcY = 1, .srcMemoryType = 2, .srcDevice = buf, .srcPitch = 512,
                         .dstMemoryType = 1, .dstHost = d2h, .dstPitch = 48, .WidthInBytes = 30, .Height = 20};
    EXPECT(p_cuMemcpy2DAsync(&down, s1), CUDA_SUCCESS);
    EXPECT(p_cuStreamSynchronize(s1), CUDA_SUCCESS);
    int copy2d_ok = 1;
    for (int row = 0; row < 20; row++)
        for (int col = 0; col < 48; col++)
            if (d2h[row * 48 + col] != (col < 30 ? h2d[(row + 2) * 64 + 4 + col] : 0xee)) copy2d_ok = 0;
    CHECK(copy2d_ok);
    EXPECT(p_cuMemcpyDtoH(grid, buf, 1024), CUDA_SUCCESS); /* row 0 untouched, row 1 from byte 8 to 38 */
    CHECK(grid[0] == 0 && grid[511] == 0 && grid[512 + 7] == 0 && grid[512 + 8] == h2d[2 * 64 + 4] && grid[512 + 37] == h2d[2 * 64 + 33] &&
          grid[512 + 38] == 0);
    gsr_memcpy2d bad = up;
    bad.WidthInBytes = 65; /* over the source's pitch */
    EXPECT(p_cuMemcpy2D(&bad), CUDA_ERROR_INVALID_VALUE);
    bad = up;
    bad.dstY = 2047; /* the last rows past the allocation: the worker refuses */
    EXPECT(p_cuMemcpy2D(&bad), CUDA_ERROR_INVALID_VALUE);
    bad = up;
    bad.srcMemoryType = 3; /* an array */
    EXPECT(p_cuMemcpy2D(&bad), CUDA_ERROR_NOT_SUPPORTED);
    bad = up;
    bad.dstPitch = SIZE_MAX / 4; /* wraps */
    EXPECT(p_cuMemcpy2D(&bad), CUDA_ERROR_INVALID_VALUE);

    /* ---- what the runtime does at exit; the worker frees the rest */
    EXPECT(p_cuMemFree(buf), CUDA_SUCCESS);
    EXPECT(p_cuPointerGetAttribute(&mtype, 2, buf), CUDA_ERROR_INVALID_VALUE); /* no longer the session's */
    EXPECT(p_cuEventDestroy(ev), CUDA_SUCCESS);
    EXPECT(p_cuStreamDestroy(s1), CUDA_SUCCESS);
    EXPECT(p_cuStreamIsCapturing(s1, &cs), CUDA_ERROR_INVALID_HANDLE); /* destroyed */
    EXPECT(p_cuStreamDestroy(s2), CUDA_SUCCESS);
    /* ---- a library's kernel outlives a reset of the context it was first used in (what
     * cudaDeviceReset does: the primary context released to nothing, then retained again) */
    P(CUresult(*)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, CUstream, void **, void **), cuLaunchKernel);
    P(CUresult(*)(void), cuCtxSynchronize);
    if (!no_libraries) { /* a module's function goes with its context (docs/remote.md) */
        EXPECT(p_cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
        EXPECT(p_cuDevicePrimaryCtxRetain(&ctx, dev), CUDA_SUCCESS);
        EXPECT(p_cuCtxSetCurrent(ctx), CUDA_SUCCESS);
        EXPECT(p_cuLaunchKernel((CUfunction)kernel, 1, 1, 1, 1, 1, 1, 0, NULL, NULL, NULL), CUDA_SUCCESS);
        EXPECT(p_cuCtxSynchronize(), CUDA_SUCCESS);
    }
    EXPECT(p_cuLibraryUnload(library), CUDA_SUCCESS);
    if (extras) EXPECT(p_cuMemcpyHtoD(global, grid, 16), CUDA_ERROR_INVALID_VALUE); /* gone with its module */
    EXPECT(p_cuDevicePrimaryCtxRelease(dev), CUDA_SUCCESS);
    if (failures) {
        printf("remote_calls: %d failures\n", failures);
        return 1;
    }
    printf("remote_calls ok\n");
    return 0;
}
