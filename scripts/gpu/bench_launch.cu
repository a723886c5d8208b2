// bench_launch.cu: launch-rate and allocation microbenchmarks for libgpushare's overhead.
// Prints one JSON line. Built with nvcc on the GPU machine; run with and without LD_PRELOAD.
// `bench_launch launch`: the launch loop only (short processes, one after another); the allocation
// and graph-launch parts are skipped and left out of the line.
// `bench_launch lockstep [LAUNCHES]`: a worker of scripts/gpu/lockstep.py (scripts/gpu-check-overhead.sh's
// launch rounds): after a warm-up it answers each "go launch" with one repetition of LAUNCHES
// (default 2,000) empty kernels and a synchronize, {"wall_s": .., "cpu_s": ..} per launch (wall:
// the loop and the drain; CPU: the launching thread's, the loop only), through the pipes named by
// LOCKSTEP_FDS. Nothing on stdout unless a CUDA call fails (its JSON error line, exit status 1).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <cuda_runtime.h>
#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "check.cuh"
#include "lockstep.h"

__global__ void empty_kernel(int *p) {
    if (p != nullptr && threadIdx.x == 1024) *p = 1;  // never true: keeps the kernel from being elided
}

// Each measurement is repeated and the best repetition kept: a short stall (another process,
// an interrupt) only slows some repetitions, so the best is the stable estimate of what the
// launch path costs. The driver's launch queue is drained between repetitions.
static const int kReps = 9;

// CPU time of the calling thread: what the launch path itself costs there (the driver's work
// and the library's), without the waits and stalls that make wall-clock rates noisy.
static double thread_cpu_s() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// The calling thread's CPU cycles and instructions (user and kernel), where perf events may be
// opened (a container may refuse them: then -1). Cycles do not depend on the CPU's clock speed,
// which CPU time per launch does: whole processes were seen running 20-30% slower than others.
static int open_counter(unsigned long long config) {
    perf_event_attr a{};
    a.type = PERF_TYPE_HARDWARE;
    a.size = sizeof a;
    a.config = config;
    a.disabled = 0;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0) {  // counting the kernel may be forbidden: the user part alone
        a.exclude_kernel = 1;
        a.exclude_hv = 1;
        fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    }
    return fd;
}
static long long read_counter(int fd) {
    long long v = -1;
    if (fd < 0 || read(fd, &v, sizeof v) != (ssize_t)sizeof v) return -1;
    return v;
}

// The lockstep worker: one repetition per request, until "stop" or the coordinator goes.
static int lockstep_main(int launches) {
    lockstep_conn conn;
    if (lockstep_open(&conn) != 0) return 2;
    CHECK(cudaFree(nullptr));
    for (int i = 0; i < 1000; i++) empty_kernel<<<1, 32>>>(nullptr);
    CHECK(cudaDeviceSynchronize());
    if (lockstep_send(&conn, "{\"ready\": true}") != 0) return 2;
    char workload[64], line[160];
    int rc;
    while ((rc = lockstep_next(&conn, workload, sizeof workload)) == 1) {
        if (std::strcmp(workload, "launch") != 0) {
            std::snprintf(line, sizeof line, "{\"error\": \"unknown workload %s\"}", workload);
            lockstep_send(&conn, line);
            return 2;
        }
        double t0 = now_s(), c0 = thread_cpu_s();
        for (int i = 0; i < launches; i++) empty_kernel<<<1, 32>>>(nullptr);
        double cpu = thread_cpu_s() - c0;
        CHECK(cudaGetLastError());
        CHECK(cudaDeviceSynchronize());
        double wall = now_s() - t0;
        std::snprintf(line, sizeof line, "{\"wall_s\": %.6e, \"cpu_s\": %.6e}", wall / launches, cpu / launches);
        if (lockstep_send(&conn, line) != 0) return 2;
    }
    return rc == 0 ? 0 : 2;
}

int main(int argc, char **argv) {
    if (argc > 1 && std::strcmp(argv[1], "lockstep") == 0) {
        int launches = argc > 2 ? std::atoi(argv[2]) : 2000;
        if (launches <= 0) {
            std::printf("{\"error\": \"lockstep: LAUNCHES must be a positive number\"}\n");
            return 2;
        }
        return lockstep_main(launches);
    }
    const bool launch_only = argc > 1 && std::strcmp(argv[1], "launch") == 0;
    const int launches = 20000, allocs = 1000, graph_launches = 20000;
    CHECK(cudaFree(nullptr));
    for (int i = 0; i < 1000; i++) empty_kernel<<<1, 32>>>(nullptr);
    CHECK(cudaDeviceSynchronize());
    double best_launch = 0, best_alloc = 1e30, best_graph = 0, best_cpu_ns = 1e30;
    double best_cycles = -1, best_instr = -1;
    int cycles_fd = open_counter(PERF_COUNT_HW_CPU_CYCLES), instr_fd = open_counter(PERF_COUNT_HW_INSTRUCTIONS);
    for (int rep = 0; rep < kReps; rep++) {
        double t0 = now_s(), c0 = thread_cpu_s();
        long long y0 = read_counter(cycles_fd), i0 = read_counter(instr_fd);
        for (int i = 0; i < launches; i++) empty_kernel<<<1, 32>>>(nullptr);
        long long y1 = read_counter(cycles_fd), i1 = read_counter(instr_fd);
        double cpu_ns = (thread_cpu_s() - c0) / launches * 1e9;  // the launch loop only, not the drain
        if (cpu_ns < best_cpu_ns) best_cpu_ns = cpu_ns;
        if (y0 >= 0 && y1 >= y0 && (best_cycles < 0 || (double)(y1 - y0) / launches < best_cycles))
            best_cycles = (double)(y1 - y0) / launches;
        if (i0 >= 0 && i1 >= i0 && (best_instr < 0 || (double)(i1 - i0) / launches < best_instr))
            best_instr = (double)(i1 - i0) / launches;
        CHECK(cudaGetLastError());
        CHECK(cudaDeviceSynchronize());
        double rate = launches / (now_s() - t0);
        if (rate > best_launch) best_launch = rate;
    }

    if (launch_only) {
        std::printf("{\"launches_per_s\": %.0f, \"launch_cpu_ns\": %.1f, \"launch_cycles\": %.1f, \"launch_instructions\": %.1f}\n",
                    best_launch, best_cpu_ns, best_cycles, best_instr);
        return 0;
    }
    void *p = nullptr;
    for (int rep = 0; rep < kReps; rep++) {
        double t0 = now_s();
        for (int i = 0; i < allocs; i++) {
            CHECK(cudaMalloc(&p, 1 << 20));
            CHECK(cudaFree(p));
        }
        double us = (now_s() - t0) / allocs * 1e6;
        if (us < best_alloc) best_alloc = us;
    }

    // Graph launches: libgpushare reads the graph memory pool's reserve after each one.
    cudaStream_t stream;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    CHECK(cudaStreamCreate(&stream));
    CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    empty_kernel<<<1, 32, 0, stream>>>(nullptr);
    CHECK(cudaStreamEndCapture(stream, &graph));
    CHECK(cudaGraphInstantiate(&exec, graph, 0));
    for (int i = 0; i < 1000; i++) CHECK(cudaGraphLaunch(exec, stream));
    CHECK(cudaStreamSynchronize(stream));
    for (int rep = 0; rep < kReps; rep++) {
        double t0 = now_s();
        for (int i = 0; i < graph_launches; i++) CHECK(cudaGraphLaunch(exec, stream));
        CHECK(cudaStreamSynchronize(stream));
        double rate = graph_launches / (now_s() - t0);
        if (rate > best_graph) best_graph = rate;
    }
    std::printf("{\"launches_per_s\": %.0f, \"alloc_free_us\": %.3f, \"graph_launches_per_s\": %.0f, \"launch_cpu_ns\": %.1f, "
                "\"launch_cycles\": %.1f, \"launch_instructions\": %.1f}\n",
                best_launch, best_alloc, best_graph, best_cpu_ns, best_cycles, best_instr);
    return 0;
}
