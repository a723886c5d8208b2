/*
 * test_fake_cuda_visible.c: CUDA_VISIBLE_DEVICES hides and renumbers devices like the
 * real driver (indexes, UUIDs, UUID prefixes; the list stops at the first bad entry).
 * Each case runs in a child process, since cuInit reads the environment once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fake_cuda_test.h"

static const char *machine =
    "{\"devices\": [{\"uuid\": \"GPU-aaaaaaaa-0000-4000-8000-000000000000\", \"name\": \"zero\", \"totalMemory\": 1073741824},"
    " {\"uuid\": \"GPU-bbbbbbbb-0000-4000-8000-000000000001\", \"name\": \"one\", \"totalMemory\": 2147483648},"
    " {\"uuid\": \"GPU-cccccccc-0000-4000-8000-000000000002\", \"name\": \"two\", \"totalMemory\": 3221225472}]}";

/* In a child: cuInit with `visible`, then compare the names in ordinal order. */
static int child(const char *visible, const char *expect, CUresult init_rc)
{
    fct_configure(machine, visible);
    CUresult r = cuInit(0);
    if (r != init_rc)
        return 10;
    if (r != CUDA_SUCCESS)
        return 0;
    int n = 0;
    char got[256] = "", name[64];
    if (cuDeviceGetCount(&n) != CUDA_SUCCESS)
        return 11;
    for (int i = 0; i < n; i++) {
        if (cuDeviceGetName(name, sizeof name, i) != CUDA_SUCCESS)
            return 12;
        (void)snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? "," : "", name);
    }
    if (strcmp(got, expect) != 0) {
        (void)fprintf(stderr, "  CUDA_VISIBLE_DEVICES=%s: got %s, expected %s\n", visible ? visible : "(unset)", got,
                      expect);
        return 13;
    }
    /* memory follows the renumbering */
    CUcontext ctx;
    size_t total = 0;
    if (n > 0 && (cuCtxCreate_v2(&ctx, 0, 0) != CUDA_SUCCESS || cuDeviceTotalMem_v2(&total, 0) != CUDA_SUCCESS))
        return 14;
    return 0;
}

static void run(const char *visible, const char *expect, CUresult init_rc)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child(visible, expect, init_rc));
    int status = 0;
    CHECK(pid > 0 && waitpid(pid, &status, 0) == pid);
    if (!CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0))
        (void)fprintf(stderr, "  case CUDA_VISIBLE_DEVICES=%s: child status %d\n", visible ? visible : "(unset)",
                      status);
}

int main(void)
{
    run(NULL, "zero,one,two", CUDA_SUCCESS);
    run("2,0", "two,zero", CUDA_SUCCESS);
    run("1", "one", CUDA_SUCCESS);
    run("GPU-cccccccc-0000-4000-8000-000000000002,1", "two,one", CUDA_SUCCESS);
    run("GPU-bbbb", "one", CUDA_SUCCESS);          /* a unique prefix */
    run("0,7,2", "zero", CUDA_SUCCESS);           /* stops at the invalid entry */
    run("1,1", "one", CUDA_SUCCESS);              /* a repeat ends the list too */
    run(" 2 , 1 ", "two,one", CUDA_SUCCESS);
    run("", "", CUDA_ERROR_NO_DEVICE);
    run("-1", "", CUDA_ERROR_NO_DEVICE);
    run("GPU-ffff", "", CUDA_ERROR_NO_DEVICE);
    return fct_finish("fake_cuda_visible");
}
