/* k8s_probe.c: a "pod" for scripts/k8s-pods (test/k8s/pods-run.ts) that reports what its
 * container gave it, as one JSON line on stdout:
 *   - env: its whole environment, in order;
 *   - preload: /etc/ld.so.preload's first line, and whether libgpushare is mapped in it;
 *   - mounts: for each PATH argument, the mount at exactly that point (from
 *     /proc/self/mountinfo) and whether it is read-only;
 *   - groups: its supplementary groups;
 *   - with --fill: the CUDA driver reached as PyTorch reaches it (dlopen + dlsym of
 *     libcuda.so.1): cuMemGetInfo's total, then 1 MiB allocations until one fails, and that
 *     result (2 = CUDA_ERROR_OUT_OF_MEMORY).
 * No CUDA header needed: the few driver types are declared here. Build: cc -O2 -o k8s_probe
 * k8s_probe.c -ldl. Usage: k8s_probe [--fill] [PATH...]
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

typedef int cu_result;
typedef int cu_device;
typedef void *cu_context;
typedef unsigned long long cu_ptr;

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* The mountinfo line whose mount point is `path`: the last one (the mount on top); its
 * options field (6th) says ro/rw. */
static void report_mount(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    char line[4096], found[4096] = "";
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char point[4096], opts[1024];
        if (sscanf(line, "%*s %*s %*s %*s %4095s %1023s", point, opts) == 2 && strcmp(point, path) == 0)
            snprintf(found, sizeof found, "%s", opts);
    }
    if (f != NULL)
        fclose(f);
    json_string(path);
    printf(": {\"mounted\": %s, \"readOnly\": %s}", found[0] ? "true" : "false",
           (strncmp(found, "ro,", 3) == 0 || strcmp(found, "ro") == 0) ? "true" : "false");
}

static int library_mapped(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    char line[4096];
    int found = 0;
    while (f != NULL && !found && fgets(line, sizeof line, f) != NULL)
        found = strstr(line, "libgpushare") != NULL;
    if (f != NULL)
        fclose(f);
    return found;
}

static void report_fill(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW);
    if (h == NULL) {
        printf(", \"fill\": {\"error\": ");
        json_string(dlerror());
        printf("}");
        return;
    }
    cu_result (*init)(unsigned) = (cu_result (*)(unsigned))dlsym(h, "cuInit");
    cu_result (*get)(cu_device *, int) = (cu_result (*)(cu_device *, int))dlsym(h, "cuDeviceGet");
    cu_result (*retain)(cu_context *, cu_device) = (cu_result (*)(cu_context *, cu_device))dlsym(h, "cuDevicePrimaryCtxRetain");
    cu_result (*current)(cu_context) = (cu_result (*)(cu_context))dlsym(h, "cuCtxSetCurrent");
    cu_result (*info)(size_t *, size_t *) = (cu_result (*)(size_t *, size_t *))dlsym(h, "cuMemGetInfo_v2");
    cu_result (*alloc)(cu_ptr *, size_t) = (cu_result (*)(cu_ptr *, size_t))dlsym(h, "cuMemAlloc_v2");
    cu_device dev = 0;
    cu_context ctx = NULL;
    size_t free_b = 0, total_b = 0;
    cu_result rc = (init && get && retain && current && info && alloc) ? init(0) : -1;
    if (rc == 0)
        rc = get(&dev, 0);
    if (rc == 0)
        rc = retain(&ctx, dev);
    if (rc == 0)
        rc = current(ctx);
    if (rc == 0)
        rc = info(&free_b, &total_b);
    if (rc != 0) {
        printf(", \"fill\": {\"error\": \"driver setup failed\", \"rc\": %d}", rc);
        return;
    }
    size_t got = 0;
    cu_result last = 0;
    cu_ptr p;
    /* Up to twice the total: far enough past any limit to see the refusal, and a stop if none comes. */
    while (got < 2 * total_b && (last = alloc(&p, 1 << 20)) == 0)
        got += 1 << 20;
    size_t free_after = 0, total_after = 0;
    info(&free_after, &total_after);
    printf(", \"fill\": {\"total\": %zu, \"freeBefore\": %zu, \"allocated\": %zu, \"lastResult\": %d, \"freeAfter\": %zu}",
           total_b, free_b, got, (int)last, free_after);
}

int main(int argc, char **argv)
{
    int fill = argc > 1 && strcmp(argv[1], "--fill") == 0;
    printf("{\"env\": [");
    for (char **e = environ; *e; e++) {
        if (e != environ)
            printf(", ");
        json_string(*e);
    }
    char preload[4096] = "";
    FILE *f = fopen("/etc/ld.so.preload", "r");
    if (f != NULL) {
        if (fgets(preload, sizeof preload, f) == NULL)
            preload[0] = '\0';
        fclose(f);
    }
    preload[strcspn(preload, "\n")] = '\0';
    printf("], \"preloadFile\": ");
    json_string(preload);
    printf(", \"libraryMapped\": %s, \"mounts\": {", library_mapped() ? "true" : "false");
    for (int i = 1 + fill; i < argc; i++) {
        if (i > 1 + fill)
            printf(", ");
        report_mount(argv[i]);
    }
    gid_t groups[64];
    int n = getgroups(64, groups);
    printf("}, \"groups\": [");
    for (int i = 0; i < n; i++)
        printf("%s%u", i ? ", " : "", (unsigned)groups[i]);
    printf("]");
    if (fill)
        report_fill();
    printf("}\n");
    return 0;
}
