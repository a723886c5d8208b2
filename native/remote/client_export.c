/*
 * client_export.c: the driver's private tables the CUDA runtime asks for with cuGetExportTable
 * (docs/remote.md "The export tables"), written here on top of the client's forwarded calls.
 *
 * Their layouts are not documented by NVIDIA. What each entry is was learnt by reading public
 * reverse engineering, not NVIDIA's code: ZLUDA's dark-API definitions and its implementation
 * of them (github.com/vosen/ZLUDA, dark_api/src/lib.rs and zluda/src/impl/driver.rs: table
 * sizes, which slots the runtime calls, their arguments, the integrity check's inputs and key)
 * and VirtualGPU's notes on what CUDA 13's runtime asks in which order. The code is ours.
 *
 * Every table is a static array of pointers whose first slot, where the runtime expects one,
 * is the table's size in bytes. Slots whose meaning is unknown hold a function that logs the
 * slot once (GPUSHARE_REMOTE_LOG=1) and returns CUDA_ERROR_NOT_SUPPORTED, so a runtime that
 * calls one fails a call instead of jumping to NULL. Nothing here reaches another session:
 * modules go through cuModuleLoadData (the worker checks and owns them), contexts are this
 * session's ids, and the context-local store lives in this process.
 */
#define _DEFAULT_SOURCE
#include "client.h"
#include "client_served.h"
#include "md2.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DEVICES 64

typedef void *slot;

/* ---- unknown slots: logged once each, refused ---------------------------------------- */
static void log_slot(const char *table, int index, int *logged) {
    char what[160];
    snprintf(what, sizeof what, "cuGetExportTable %s slot %d called: not served (CUDA_ERROR_NOT_SUPPORTED)", table, index);
    if (gsr_log_level() >= 2) fprintf(stderr, "gpushare remote: %s\n", what);
    gsr_log_once(what, logged);
}

/* GPUSHARE_REMOTE_LOG=2: each served slot's call and its result, in order. */
static CUresult trace_slot(const char *table, int index, CUresult rc) {
    if (gsr_log_level() >= 2) fprintf(stderr, "gpushare remote: cuGetExportTable %s slot %d called -> %d\n", table, index, (int)rc);
    return rc;
}

/* Log-once flags, process-wide as the tables are (one line per slot per process). */
static int logged_slots[32];
static CUresult cudart_slot3(void) { log_slot("CUDART_INTERFACE", 3, &logged_slots[0]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult cudart_slot4(void) { log_slot("CUDART_INTERFACE", 4, &logged_slots[1]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult cudart_slot5(void) { log_slot("CUDART_INTERFACE", 5, &logged_slots[2]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult cudart_slot9(void) { log_slot("CUDART_INTERFACE", 9, &logged_slots[3]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult cudart_slot10(void) { log_slot("CUDART_INTERFACE", 10, &logged_slots[4]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult cudart_slot11(void) { log_slot("CUDART_INTERFACE", 11, &logged_slots[5]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult hooks_slot1(void) { log_slot("TOOLS_RUNTIME_CALLBACK_HOOKS", 1, &logged_slots[6]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult hooks_slot3(void) { log_slot("TOOLS_RUNTIME_CALLBACK_HOOKS", 3, &logged_slots[7]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult hooks_slot4(void) { log_slot("TOOLS_RUNTIME_CALLBACK_HOOKS", 4, &logged_slots[8]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult hooks_slot5(void) { log_slot("TOOLS_RUNTIME_CALLBACK_HOOKS", 5, &logged_slots[9]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult tls_slot3(void) { log_slot("TOOLS_TLS", 3, &logged_slots[12]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult cls_slot3(void) { log_slot("CONTEXT_LOCAL_STORAGE", 3, &logged_slots[13]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult checks_slot1(void) { log_slot("CONTEXT_CHECKS", 1, &logged_slots[14]); return CUDA_ERROR_NOT_SUPPORTED; }
static CUresult integrity_slot2(void) { log_slot("INTEGRITY_CHECK", 2, &logged_slots[15]); return CUDA_ERROR_NOT_SUPPORTED; }

/* ---- CUDART_INTERFACE: modules from the program's fatbins, the primary context ---------- */

/* A registered fatbin (its __fatBinC_Wrapper_t): cuModuleLoadData takes the wrapper itself. */
static CUresult module_from_fatbin(CUmodule *module, const void *fatbin_wrapper) {
    if (!module || !fatbin_wrapper) return trace_slot("CUDART_INTERFACE", 1, CUDA_ERROR_INVALID_VALUE);
    return trace_slot("CUDART_INTERFACE", 1, cuModuleLoadData(module, fatbin_wrapper));
}

/* The same with three more arguments ZLUDA saw null/zero in every call (their meaning is
 * unknown): refused when set rather than guessed. */
static int logged_module_options;
static CUresult module_from_fatbin_ext(CUmodule *module, const void *fatbin_wrapper, void *arg3, void *arg4, unsigned arg5) {
    if (arg3 || arg4 || arg5) {
        gsr_log_once("cuGetExportTable CUDART_INTERFACE: a module load with options is not served (CUDA_ERROR_NOT_SUPPORTED)",
                     &logged_module_options);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return module_from_fatbin(module, fatbin_wrapper);
}

/* The same from the fatbin's own header (slot 8's argument order differs). */
static CUresult module_from_fatbin_header(const void *fatbin, CUmodule *module, void *arg3, void *arg4, unsigned arg5) {
    return module_from_fatbin_ext(module, fatbin, arg3, arg4, arg5);
}

/*
 * The device's primary context without a retain the program could see: the runtime asks for
 * it before it retains it (cuDevicePrimaryCtxGetState still says inactive after this, as with
 * the real driver). The worker only names contexts the session holds, so the client retains
 * it there once per device, uncounted here, for the session's life: the handle stays the
 * same across the runtime's own retains and releases (the worker frees it when the session ends).
 */
static struct {
    pthread_mutex_t lock;
    uint64_t id[MAX_DEVICES];
} primary_ids = {.lock = PTHREAD_MUTEX_INITIALIZER};

CUresult gsr_primary_context(CUcontext *pctx, CUdevice dev) {
    if (!pctx) return CUDA_ERROR_INVALID_VALUE;
    if (dev < 0 || dev >= MAX_DEVICES) return CUDA_ERROR_INVALID_DEVICE;
    CUresult rc = cuInit(0);
    if (rc != CUDA_SUCCESS) return rc;
    pthread_mutex_lock(&primary_ids.lock);
    uint64_t id = primary_ids.id[dev];
    if (!id) {
        gsr_args out;
        rc = gsr_call(GSR_OP_PRIMARY_CTX_RETAIN, &(gsr_args){.v = {(uint64_t)(int64_t)dev}, .nv = 1}, &out);
        if (rc == CUDA_SUCCESS) id = primary_ids.id[dev] = out.v[0];
    }
    pthread_mutex_unlock(&primary_ids.lock);
    if (rc == CUDA_SUCCESS) *pctx = (CUcontext)(uintptr_t)id;
    return rc;
}

static void runtime_notice(size_t arg) { (void)arg; }

/* The real driver loads its PTX compiler and NVVM here; the worker's driver does that itself. */
static CUresult load_compilers(void) { return CUDA_SUCCESS; }

static const slot cudart_interface[13] = {
    (slot)(uintptr_t)(13 * sizeof(slot)), (slot)module_from_fatbin, (slot)gsr_primary_context, (slot)cudart_slot3,
    (slot)cudart_slot4, (slot)cudart_slot5, (slot)module_from_fatbin_ext, (slot)runtime_notice,
    (slot)module_from_fatbin_header, (slot)cudart_slot9, (slot)cudart_slot10, (slot)cudart_slot11,
    (slot)load_compilers,
};

/* ---- TOOLS_RUNTIME_CALLBACK_HOOKS: two buffers the runtime writes its callback state into.
 * No tool reads them here (tools attach to the worker's driver, not to this client). Global:
 * the runtime keeps the pointers for the process's life, as the driver's own buffers live. */
static uint32_t hooks_buffer1[1024], hooks_buffer2[14];

static void hooks_get_buffer1(void **ptr, size_t *size) {
    *ptr = hooks_buffer1;
    *size = sizeof hooks_buffer1 / sizeof hooks_buffer1[0];
}

static void hooks_get_buffer2(void **ptr, size_t *size) {
    *ptr = hooks_buffer2;
    *size = sizeof hooks_buffer2 / sizeof hooks_buffer2[0];
}

static const slot tools_callback_hooks[7] = {
    (slot)(uintptr_t)(7 * sizeof(slot)), (slot)hooks_slot1, (slot)hooks_get_buffer1, (slot)hooks_slot3,
    (slot)hooks_slot4, (slot)hooks_slot5, (slot)hooks_get_buffer2,
};

/* ---- TOOLS_TLS: a tool's way to set and get the thread's current context (slots 1 and 2,
 * cuCtxSetCurrent and cuCtxGetCurrent by another name). cuBLASLt 13 gets the context with slot 2
 * before it chooses a matmul's algorithm, and fails the choice (CUBLAS_STATUS_NOT_SUPPORTED)
 * when it is refused. */
static CUresult tls_set_current(CUcontext ctx) { return trace_slot("TOOLS_TLS", 1, cuCtxSetCurrent(ctx)); }
static CUresult tls_get_current(CUcontext *pctx) { return trace_slot("TOOLS_TLS", 2, cuCtxGetCurrent(pctx)); }
static const slot tools_tls[4] = {(slot)(uintptr_t)(4 * sizeof(slot)), (slot)tls_set_current, (slot)tls_get_current, (slot)tls_slot3};

/* ---- TOOLS_CONTEXT (21318c60-...): the driver's context object for tools, 94 slots in
 * driver 580 (the size word first). cuBLASLt 13 asks for it when it chooses a matmul's
 * algorithm, after TOOLS_TLS's current context. What its slots do is not public: each is
 * served as a refusal that names its index (GPUSHARE_REMOTE_LOG=1 once, =2 every call), so a
 * run on a GPU shows which ones a library calls and in what order, and the library sees an
 * error where an absent table would have given it the same. */
static int logged_tools_context[95];
/* The arguments a slot was called with, as the first six integer registers hold them
 * (GPUSHARE_REMOTE_LOG=2): what a slot's signature is must be read from its callers. */
static CUresult tools_context_refused(int n, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {
    if (gsr_log_level() >= 2)
        fprintf(stderr, "gpushare remote: TOOLS_CONTEXT slot %d args 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx 0x%llx\n", n, (unsigned long long)a0,
                (unsigned long long)a1, (unsigned long long)a2, (unsigned long long)a3, (unsigned long long)a4, (unsigned long long)a5);
    log_slot("TOOLS_CONTEXT", n, &logged_tools_context[n]);
    return CUDA_ERROR_NOT_SUPPORTED;
}
#define TOOLS_CONTEXT_SLOT(n)                                                                                          \
    static CUresult tc_slot##n(uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5) {         \
        return tools_context_refused(n, a0, a1, a2, a3, a4, a5);                                                       \
    }
TOOLS_CONTEXT_SLOT(1)
TOOLS_CONTEXT_SLOT(2)
TOOLS_CONTEXT_SLOT(3)
TOOLS_CONTEXT_SLOT(5)
TOOLS_CONTEXT_SLOT(6)
TOOLS_CONTEXT_SLOT(7)
TOOLS_CONTEXT_SLOT(8)
TOOLS_CONTEXT_SLOT(9)
TOOLS_CONTEXT_SLOT(10)
TOOLS_CONTEXT_SLOT(11)
TOOLS_CONTEXT_SLOT(12)
TOOLS_CONTEXT_SLOT(13)
TOOLS_CONTEXT_SLOT(14)
TOOLS_CONTEXT_SLOT(15)
TOOLS_CONTEXT_SLOT(16)
TOOLS_CONTEXT_SLOT(17)
TOOLS_CONTEXT_SLOT(18)
TOOLS_CONTEXT_SLOT(19)
TOOLS_CONTEXT_SLOT(20)
TOOLS_CONTEXT_SLOT(21)
TOOLS_CONTEXT_SLOT(22)
TOOLS_CONTEXT_SLOT(23)
TOOLS_CONTEXT_SLOT(24)
TOOLS_CONTEXT_SLOT(25)
TOOLS_CONTEXT_SLOT(26)
TOOLS_CONTEXT_SLOT(27)
TOOLS_CONTEXT_SLOT(28)
TOOLS_CONTEXT_SLOT(29)
TOOLS_CONTEXT_SLOT(30)
TOOLS_CONTEXT_SLOT(31)
TOOLS_CONTEXT_SLOT(32)
TOOLS_CONTEXT_SLOT(33)
TOOLS_CONTEXT_SLOT(34)
TOOLS_CONTEXT_SLOT(35)
TOOLS_CONTEXT_SLOT(36)
TOOLS_CONTEXT_SLOT(37)
TOOLS_CONTEXT_SLOT(38)
TOOLS_CONTEXT_SLOT(39)
TOOLS_CONTEXT_SLOT(40)
TOOLS_CONTEXT_SLOT(41)
TOOLS_CONTEXT_SLOT(42)
TOOLS_CONTEXT_SLOT(43)
TOOLS_CONTEXT_SLOT(44)
TOOLS_CONTEXT_SLOT(45)
TOOLS_CONTEXT_SLOT(46)
TOOLS_CONTEXT_SLOT(47)
TOOLS_CONTEXT_SLOT(48)
TOOLS_CONTEXT_SLOT(49)
TOOLS_CONTEXT_SLOT(50)
TOOLS_CONTEXT_SLOT(51)
TOOLS_CONTEXT_SLOT(52)
TOOLS_CONTEXT_SLOT(53)
TOOLS_CONTEXT_SLOT(54)
TOOLS_CONTEXT_SLOT(55)
TOOLS_CONTEXT_SLOT(56)
TOOLS_CONTEXT_SLOT(57)
TOOLS_CONTEXT_SLOT(58)
TOOLS_CONTEXT_SLOT(59)
TOOLS_CONTEXT_SLOT(60)
TOOLS_CONTEXT_SLOT(61)
TOOLS_CONTEXT_SLOT(62)
TOOLS_CONTEXT_SLOT(63)
TOOLS_CONTEXT_SLOT(64)
TOOLS_CONTEXT_SLOT(65)
TOOLS_CONTEXT_SLOT(66)
TOOLS_CONTEXT_SLOT(67)
TOOLS_CONTEXT_SLOT(68)
TOOLS_CONTEXT_SLOT(69)
TOOLS_CONTEXT_SLOT(70)
TOOLS_CONTEXT_SLOT(71)
TOOLS_CONTEXT_SLOT(72)
TOOLS_CONTEXT_SLOT(73)
TOOLS_CONTEXT_SLOT(74)
TOOLS_CONTEXT_SLOT(75)
TOOLS_CONTEXT_SLOT(76)
TOOLS_CONTEXT_SLOT(77)
TOOLS_CONTEXT_SLOT(78)
TOOLS_CONTEXT_SLOT(79)
TOOLS_CONTEXT_SLOT(80)
TOOLS_CONTEXT_SLOT(81)
TOOLS_CONTEXT_SLOT(82)
TOOLS_CONTEXT_SLOT(83)
TOOLS_CONTEXT_SLOT(84)
TOOLS_CONTEXT_SLOT(85)
TOOLS_CONTEXT_SLOT(86)
TOOLS_CONTEXT_SLOT(87)
TOOLS_CONTEXT_SLOT(88)
TOOLS_CONTEXT_SLOT(89)
TOOLS_CONTEXT_SLOT(90)
TOOLS_CONTEXT_SLOT(91)
TOOLS_CONTEXT_SLOT(92)
TOOLS_CONTEXT_SLOT(93)
TOOLS_CONTEXT_SLOT(94)
#undef TOOLS_CONTEXT_SLOT
/* Slot 4: a context's number (its arguments on the H100: the context, then a pointer to a
 * 64-bit word), called by cuBLASLt 13 once per algorithm it weighs: the driver's unique id of the
 * context, as cuCtxGetId answers it (public reverse engineering names the slot
 * "getContextNumber"). NULL: the current context. */
static CUresult tools_context_id(CUcontext ctx, unsigned long long *number) {
    return trace_slot("TOOLS_CONTEXT", 4, cuCtxGetId(ctx, number));
}
static const slot tools_context[95] = {
    (slot)(uintptr_t)(95 * sizeof(slot)),
    (slot)tc_slot1, (slot)tc_slot2, (slot)tc_slot3, (slot)tools_context_id, (slot)tc_slot5, (slot)tc_slot6,
    (slot)tc_slot7, (slot)tc_slot8, (slot)tc_slot9, (slot)tc_slot10, (slot)tc_slot11, (slot)tc_slot12,
    (slot)tc_slot13, (slot)tc_slot14, (slot)tc_slot15, (slot)tc_slot16, (slot)tc_slot17, (slot)tc_slot18,
    (slot)tc_slot19, (slot)tc_slot20, (slot)tc_slot21, (slot)tc_slot22, (slot)tc_slot23, (slot)tc_slot24,
    (slot)tc_slot25, (slot)tc_slot26, (slot)tc_slot27, (slot)tc_slot28, (slot)tc_slot29, (slot)tc_slot30,
    (slot)tc_slot31, (slot)tc_slot32, (slot)tc_slot33, (slot)tc_slot34, (slot)tc_slot35, (slot)tc_slot36,
    (slot)tc_slot37, (slot)tc_slot38, (slot)tc_slot39, (slot)tc_slot40, (slot)tc_slot41, (slot)tc_slot42,
    (slot)tc_slot43, (slot)tc_slot44, (slot)tc_slot45, (slot)tc_slot46, (slot)tc_slot47, (slot)tc_slot48,
    (slot)tc_slot49, (slot)tc_slot50, (slot)tc_slot51, (slot)tc_slot52, (slot)tc_slot53, (slot)tc_slot54,
    (slot)tc_slot55, (slot)tc_slot56, (slot)tc_slot57, (slot)tc_slot58, (slot)tc_slot59, (slot)tc_slot60,
    (slot)tc_slot61, (slot)tc_slot62, (slot)tc_slot63, (slot)tc_slot64, (slot)tc_slot65, (slot)tc_slot66,
    (slot)tc_slot67, (slot)tc_slot68, (slot)tc_slot69, (slot)tc_slot70, (slot)tc_slot71, (slot)tc_slot72,
    (slot)tc_slot73, (slot)tc_slot74, (slot)tc_slot75, (slot)tc_slot76, (slot)tc_slot77, (slot)tc_slot78,
    (slot)tc_slot79, (slot)tc_slot80, (slot)tc_slot81, (slot)tc_slot82, (slot)tc_slot83, (slot)tc_slot84,
    (slot)tc_slot85, (slot)tc_slot86, (slot)tc_slot87, (slot)tc_slot88, (slot)tc_slot89, (slot)tc_slot90,
    (slot)tc_slot91, (slot)tc_slot92, (slot)tc_slot93, (slot)tc_slot94,
};

/* ---- CONTEXT_LOCAL_STORAGE: the runtime's own state per context, as (context, key) -> value
 * with a destructor the driver calls when the context goes (cuCtxDestroy here). Local: these
 * are pointers into this process. Process-wide, as the contexts it is keyed by are. No size
 * slot in this table. */
typedef void (*cls_destructor)(CUcontext ctx, void *key, void *value);
typedef struct cls_entry {
    uint64_t ctx;
    void *key, *value;
    cls_destructor dtor;
} cls_entry;

static struct {
    pthread_mutex_t lock;
    cls_entry *e;
    size_t n, cap;
} cls = {.lock = PTHREAD_MUTEX_INITIALIZER};

static uint64_t context_or_current(CUcontext ctx) { return ctx ? (uint64_t)(uintptr_t)ctx : gsr_current_ctx(); }

static CUresult cls_put(CUcontext ctx, void *key, void *value, cls_destructor dtor) {
    uint64_t id = context_or_current(ctx);
    if (!id) return trace_slot("CONTEXT_LOCAL_STORAGE", 0, CUDA_ERROR_INVALID_CONTEXT);
    CUresult rc = CUDA_SUCCESS;
    pthread_mutex_lock(&cls.lock);
    size_t i = 0;
    while (i < cls.n && !(cls.e[i].ctx == id && cls.e[i].key == key)) i++;
    if (i == cls.n && cls.n == cls.cap) {
        size_t cap = cls.cap ? 2 * cls.cap : 16;
        cls_entry *grown = realloc(cls.e, cap * sizeof *grown);
        if (grown) {
            cls.e = grown;
            cls.cap = cap;
        } else {
            rc = CUDA_ERROR_OUT_OF_MEMORY;
        }
    }
    if (rc == CUDA_SUCCESS) {
        if (i == cls.n) cls.n++;
        cls.e[i] = (cls_entry){.ctx = id, .key = key, .value = value, .dtor = dtor};
    }
    pthread_mutex_unlock(&cls.lock);
    return trace_slot("CONTEXT_LOCAL_STORAGE", 0, rc);
}

static CUresult cls_delete(CUcontext ctx, void *key) {
    uint64_t id = context_or_current(ctx);
    if (!id) return CUDA_ERROR_INVALID_CONTEXT;
    pthread_mutex_lock(&cls.lock);
    for (size_t i = 0; i < cls.n; i++)
        if (cls.e[i].ctx == id && cls.e[i].key == key) {
            cls.e[i] = cls.e[--cls.n];
            break;
        }
    pthread_mutex_unlock(&cls.lock);
    return CUDA_SUCCESS;
}

/* A key never put is CUDA_ERROR_INVALID_HANDLE: the runtime takes that as "not set yet". */
static CUresult cls_get(void **value, CUcontext ctx, void *key) {
    if (!value) return trace_slot("CONTEXT_LOCAL_STORAGE", 2, CUDA_ERROR_INVALID_VALUE);
    uint64_t id = context_or_current(ctx);
    if (!id) return trace_slot("CONTEXT_LOCAL_STORAGE", 2, CUDA_ERROR_INVALID_CONTEXT);
    CUresult rc = CUDA_ERROR_INVALID_HANDLE;
    pthread_mutex_lock(&cls.lock);
    for (size_t i = 0; i < cls.n; i++)
        if (cls.e[i].ctx == id && cls.e[i].key == key) {
            *value = cls.e[i].value;
            rc = CUDA_SUCCESS;
            break;
        }
    pthread_mutex_unlock(&cls.lock);
    return trace_slot("CONTEXT_LOCAL_STORAGE", 2, rc);
}

void gsr_context_storage_drop(uint64_t ctx) {
    for (;;) {
        cls_entry gone = {0};
        pthread_mutex_lock(&cls.lock);
        for (size_t i = 0; i < cls.n; i++)
            if (cls.e[i].ctx == ctx) {
                gone = cls.e[i];
                cls.e[i] = cls.e[--cls.n];
                break;
            }
        pthread_mutex_unlock(&cls.lock);
        if (!gone.ctx) return;
        if (gone.dtor) gone.dtor((CUcontext)(uintptr_t)ctx, gone.key, gone.value); /* outside the lock: it may call back */
    }
}

static const slot context_local_storage[4] = {(slot)cls_put, (slot)cls_delete, (slot)cls_get, (slot)cls_slot3};

/* ---- CONTEXT_CHECKS: flags about a context that ZLUDA found always clear ---------------- */
static CUresult context_check(CUcontext ctx, uint32_t *result1, const void **result2) {
    (void)ctx, (void)result2;
    if (result1) *result1 = 0;
    return trace_slot("CONTEXT_CHECKS", 2, CUDA_SUCCESS);
}

static uint32_t context_check3(void) { return 0; }

static const slot context_checks[4] = {(slot)(uintptr_t)(4 * sizeof(slot)), (slot)checks_slot1, (slot)context_check,
                                       (slot)context_check3};

/* ---- INTEGRITY_CHECK: the runtime's check that it talks to a genuine driver ---------------
 * An HMAC-MD2 (md2.c) over this process's identity, the tables' addresses and the devices,
 * keyed by a constant; the runtime computes the same from what it saw and compares. Inputs,
 * their layout, the key and the two fixed answers as ZLUDA found them (dark_api/src/lib.rs
 * integrity_check, which spells HMAC-MD2 out pass by pass). */
static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2]);

static const slot integrity_table[3] = {(slot)(uintptr_t)(3 * sizeof(slot)), (slot)integrity_check, (slot)integrity_slot2};

typedef struct integrity_process {
    uint32_t driver_version, version, pid, thread;
    const void *cudart_table, *integrity_table, *check_fn;
    uint64_t unix_seconds;
} integrity_process;

typedef struct integrity_device {
    CUuuid uuid;
    int32_t pci_domain, pci_bus, pci_device;
} integrity_device;

static CUresult integrity_check(uint32_t version, uint64_t unix_seconds, uint64_t result[2]) {
    static const uint8_t key[16] = {0x14, 0x6a, 0xdd, 0xae, 0x53, 0xa9, 0xa7, 0x52,
                                    0xaa, 0x08, 0x41, 0x36, 0x0b, 0xf5, 0x5a, 0x9f};
    if (!result) return CUDA_ERROR_INVALID_VALUE;
    if (version % 10 == 0 || version % 10 == 1) { /* runtimes of these versions take a constant */
        result[0] = version % 10 ? 0x1841181c03cb675cull : 0x3341181c03cb675cull;
        result[1] = 0x8ed383aa1f4cd1e8ull;
        return CUDA_SUCCESS;
    }
    int driver = 0, count = 0;
    CUresult rc = cuDriverGetVersion(&driver);
    if (rc == CUDA_SUCCESS) rc = cuDeviceGetCount(&count);
    if (rc != CUDA_SUCCESS) return rc;
    if (count < 0 || count > MAX_DEVICES) return CUDA_ERROR_INVALID_DEVICE;
    integrity_process proc = {
        .driver_version = (uint32_t)driver, .version = version, .pid = (uint32_t)getpid(),
        .thread = (uint32_t)(uintptr_t)pthread_self(), .cudart_table = cudart_interface,
        .integrity_table = integrity_table, .check_fn = integrity_table[1], .unix_seconds = unix_seconds,
    };
    integrity_device devs[MAX_DEVICES];
    memset(devs, 0, sizeof devs); /* hashed as bytes: no stray padding */
    for (int d = 0; d < count && rc == CUDA_SUCCESS; d++) {
        rc = cuDeviceGetUuid_v2(&devs[d].uuid, d);
        if (rc == CUDA_SUCCESS) rc = cuDeviceGetAttribute(&devs[d].pci_domain, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID, d);
        if (rc == CUDA_SUCCESS) rc = cuDeviceGetAttribute(&devs[d].pci_bus, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID, d);
        if (rc == CUDA_SUCCESS) rc = cuDeviceGetAttribute(&devs[d].pci_device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID, d);
    }
    if (rc != CUDA_SUCCESS) return rc;
    const void *parts[] = {&proc, devs};
    size_t lens[] = {sizeof proc, (size_t)count * sizeof devs[0]};
    uint8_t digest[16];
    gsr_hmac_md2(key, parts, lens, 2, digest);
    memcpy(result, digest, sizeof digest);
    return CUDA_SUCCESS;
}

/* ---- the tables by UUID ----------------------------------------------------------------- */
typedef struct export_table {
    const char *name;
    uint8_t uuid[16];
    const slot *table;
} export_table;

static const export_table tables[] = {
    {"CUDART_INTERFACE", {0x6b, 0xd5, 0xfb, 0x6c, 0x5b, 0xf4, 0xe7, 0x4a, 0x89, 0x87, 0xd9, 0x39, 0x12, 0xfd, 0x9d, 0xf9}, cudart_interface},
    {"TOOLS_RUNTIME_CALLBACK_HOOKS", {0xa0, 0x94, 0x79, 0x8c, 0x2e, 0x74, 0x2e, 0x74, 0x93, 0xf2, 0x08, 0x00, 0x20, 0x0c, 0x0a, 0x66}, tools_callback_hooks},
    {"TOOLS_TLS", {0x42, 0xd8, 0x5a, 0x81, 0x23, 0xf6, 0xcb, 0x47, 0x82, 0x98, 0xf6, 0xe7, 0x8a, 0x3a, 0xec, 0xdc}, tools_tls},
    {"CONTEXT_LOCAL_STORAGE", {0xc6, 0x93, 0x33, 0x6e, 0x11, 0x21, 0xdf, 0x11, 0xa8, 0xc3, 0x68, 0xf3, 0x55, 0xd8, 0x95, 0x93}, context_local_storage},
    {"CONTEXT_CHECKS", {0x26, 0x3e, 0x88, 0x60, 0x7c, 0xd2, 0x61, 0x43, 0x92, 0xf6, 0xbb, 0xd5, 0x00, 0x6d, 0xfa, 0x7e}, context_checks},
    {"TOOLS_CONTEXT", {0x21, 0x31, 0x8c, 0x60, 0x97, 0x14, 0x32, 0x48, 0x8c, 0xa6, 0x41, 0xff, 0x73, 0x24, 0xc8, 0xf2}, tools_context},
    {"INTEGRITY_CHECK", {0xd4, 0x08, 0x20, 0x55, 0xbd, 0xe6, 0x70, 0x4b, 0x8d, 0x34, 0xba, 0x12, 0x3c, 0x66, 0xe1, 0xf2}, integrity_table},
};

const void *gsr_export_table(const CUuuid *id, const char **name) {
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (memcmp(tables[i].uuid, id->bytes, 16) == 0) {
            if (name) *name = tables[i].name;
            return tables[i].table;
        }
    return NULL;
}
