/*
 * dispatch.c: the hook table expanded (STYLE 8): real driver functions, the sorted name
 * table (name -> our hook, for dlsym), the reverse map (driver pointer -> our hook, for
 * cuGetProcAddress), and the cuGetProcAddress hooks themselves.
 *
 * Why a reverse map rather than our own version table: cuGetProcAddress("cuMemAlloc",
 * 13000, PER_THREAD) asks the driver which entry point that name means at that version
 * and stream mode; we let the driver answer and only swap the answer for our hook when it
 * is a function we interpose, so every _v2/_v3/_ptsz/_ptds choice stays the driver's.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "hooks.h"
#include "log.h"

/* Our definitions must have the driver's exact types (gs_cuda_api.h). */
#define GS_CALL(name, params, args) \
    _Static_assert(__builtin_types_compatible_p(__typeof__(&name), CUresult (*) params), #name " matches gs_cuda_api.h");
#define GS_HOOK(name, params, args, how, policy) GS_CALL(name, params, args)
#include "hooks.def"

typedef struct named_hook {
    const char *name;
    void *hook;
} named_hook;

typedef struct real_hook {
    const void *real;
    void *hook;
} real_hook;

/* The name table holds both halves of the hook table (driver and NVML). */
#define GS_HOOK(name, params, args, how, policy) +1
#define GS_NVML_HOOK(name, params, args, how, policy) +1
enum { HOOK_COUNT = 0
#include "hooks.def"
#include "nvml_hooks.def"
};

static struct {
    pthread_once_t names_once, real_once;
    named_hook by_name[HOOK_COUNT]; /* sorted by name */
    void *hooks[HOOK_COUNT];        /* sorted by address */
    real_hook by_real[HOOK_COUNT];  /* sorted by real address; by_real_count used */
    size_t by_real_count;
    gs_real_fns real;
    atomic_bool unknown_logged;
} D = {.names_once = PTHREAD_ONCE_INIT, .real_once = PTHREAD_ONCE_INIT};

static int cmp_name(const void *a, const void *b)
{
    return strcmp(((const named_hook *)a)->name, ((const named_hook *)b)->name);
}

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t) * (void *const *)a, y = (uintptr_t) * (void *const *)b;
    return x < y ? -1 : x > y;
}

static int cmp_real(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const real_hook *)a)->real, y = (uintptr_t)((const real_hook *)b)->real;
    return x < y ? -1 : x > y;
}

static void build_names(void)
{
    size_t n = 0;
#define GS_HOOK(name, params, args, how, policy) D.by_name[n++] = (named_hook){#name, (void *)&name};
#define GS_NVML_HOOK(name, params, args, how, policy) D.by_name[n++] = (named_hook){#name, (void *)&name};
#include "hooks.def"
#include "nvml_hooks.def"
    qsort(D.by_name, HOOK_COUNT, sizeof D.by_name[0], cmp_name);
    for (size_t i = 0; i < HOOK_COUNT; i++)
        D.hooks[i] = D.by_name[i].hook;
    qsort(D.hooks, HOOK_COUNT, sizeof D.hooks[0], cmp_ptr);
}

/* Stand-ins for symbols this libcuda lacks (an older driver): the call fails cleanly. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#define GS_CALL(name, params, args) \
    static CUresult missing_##name params { return CUDA_ERROR_NOT_FOUND; }
#define GS_HOOK(name, params, args, how, policy) GS_CALL(name, params, args)
#include "hooks.def"
#pragma GCC diagnostic pop

/* The libcuda the process already uses; loading it ourselves only if it has none yet. */
static void resolve_real(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
    if (h == NULL)
        h = dlopen("libcuda.so.1", RTLD_NOW);
    if (h == NULL)
        gs_log(GS_LOG_ERROR, "cannot load libcuda.so.1: %s", dlerror());
#define GS_CALL(name, params, args) D.real.name = h ? (gs_fn_##name)gs_real_dlsym(h, #name) : NULL;
#define GS_HOOK(name, params, args, how, policy) GS_CALL(name, params, args)
#include "hooks.def"
    size_t n = 0;
#define GS_HOOK(name, params, args, how, policy) \
    if (D.real.name != NULL && (void *)D.real.name != (void *)&name) \
        D.by_real[n++] = (real_hook){(const void *)D.real.name, (void *)&name};
#include "hooks.def"
    qsort(D.by_real, n, sizeof D.by_real[0], cmp_real);
    D.by_real_count = n;
#define GS_CALL(name, params, args) \
    if (D.real.name == NULL) \
        D.real.name = missing_##name;
#define GS_HOOK(name, params, args, how, policy) GS_CALL(name, params, args)
#include "hooks.def"
}

_Atomic(const gs_real_fns *) gs_real_resolved;

const gs_real_fns *gs_real_resolve(void)
{
    (void)pthread_once(&D.real_once, resolve_real);
    atomic_store_explicit(&gs_real_resolved, &D.real, memory_order_release);
    return &D.real;
}

/* Our hook for an exported driver name, or NULL (binary search of the name table). */
static void *hook_by_name(const char *name)
{
    (void)pthread_once(&D.names_once, build_names);
    size_t lo = 0, hi = HOOK_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(D.by_name[mid].name, name);
        if (c == 0)
            return D.by_name[mid].hook;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Our hook for a real driver function pointer, or NULL (binary search of the reverse map). */
static void *hook_by_real(const void *real)
{
    (void)gs_real();
    size_t lo = 0, hi = D.by_real_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (D.by_real[mid].real == real)
            return D.by_real[mid].hook;
        if ((uintptr_t)D.by_real[mid].real < (uintptr_t)real)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Whether p is one of our hooks. */
static bool is_hook(const void *p)
{
    (void)pthread_once(&D.names_once, build_names);
    size_t lo = 0, hi = HOOK_COUNT;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (D.hooks[mid] == p)
            return true;
        if ((uintptr_t)D.hooks[mid] < (uintptr_t)p)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

static const char *lib_base(const void *p)
{
    Dl_info info;
    if (p == NULL || dladdr(p, &info) == 0 || info.dli_fname == NULL)
        return "";
    const char *base = strrchr(info.dli_fname, '/');
    return base ? base + 1 : info.dli_fname;
}

/* Whether code at p belongs to libcuda or libnvidia-ml (dladdr): a definition we replace. */
static bool in_vendor_lib(const void *p)
{
    const char *base = lib_base(p);
    return strncmp(base, "libcuda.so", 10) == 0 || strncmp(base, "libnvidia-ml.so", 15) == 0;
}

void *gs_dlsym_hook(void *handle, const char *name)
{
    void *hook = hook_by_name(name);
    if (hook == NULL)
        return NULL;
    void *real = gs_real_dlsym(handle, name);
    return real != NULL && (real == hook || in_vendor_lib(real)) ? hook : NULL;
}

/* What cuGetProcAddress hands out instead of `p`, the driver's answer for `symbol`. */
static void *swap(void *p, const char *symbol)
{
    if (p == NULL || is_hook(p))
        return p; /* our own export, already (a driver that takes &symbol through its GOT) */
    void *hook = hook_by_real(p);
    if (hook != NULL)
        return hook;
    /* Not a function we interpose, or an entry point we cannot see: pass it on. */
    if (symbol != NULL && hook_by_name(symbol) != NULL && !atomic_exchange(&D.unknown_logged, true))
        gs_log(GS_LOG_DEBUG, "cuGetProcAddress(\"%s\") gave an entry point gpushare does not know; passed through",
               symbol);
    return p;
}

/* cuGetProcAddress(_v2) (always, nested too: an entry point handed out is one we keep). */
CUresult gs_lookup_proc_address_v2(gs_fn_cuGetProcAddress_v2 real, const char *symbol, void **pfn, int cudaVersion,
                                   cuuint64_t flags, CUdriverProcAddressQueryResult *symbolStatus)
{
    CUresult r = real(symbol, pfn, cudaVersion, flags, symbolStatus);
    if (r == CUDA_SUCCESS && pfn != NULL)
        *pfn = swap(*pfn, symbol);
    return r;
}

CUresult gs_lookup_proc_address(gs_fn_cuGetProcAddress real, const char *symbol, void **pfn, int cudaVersion,
                                cuuint64_t flags)
{
    CUresult r = real(symbol, pfn, cudaVersion, flags);
    if (r == CUDA_SUCCESS && pfn != NULL)
        *pfn = swap(*pfn, symbol);
    return r;
}
