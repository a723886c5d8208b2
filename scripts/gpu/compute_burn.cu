// compute_burn.cu: a compute-bound CUDA program for the compute-isolation checks
// (scripts/gpu-check-compute.sh). Prints one JSON line.
//
//   compute_burn calibrate MS            iterations for one kernel of about MS ms (alone, unlimited)
//   compute_burn burn SECONDS ITERS      launches ITERS-iteration kernels back to back (a sync
//                                        every 4) for SECONDS; counts completed kernels in 100 ms
//                                        bins of wall time ("bins"), from which the summary takes
//                                        1 s windows, throughput and settle time
//   compute_burn latency SECONDS ITERS K PERIOD_MS
//                                        a request of K kernels every PERIOD_MS, each waited for;
//                                        request latencies (ms): p50, p90, p99, max
//
// The kernel is a dependent FMA chain in every thread of 8 blocks per SM (BURN_BLOCKS
// overrides the grid): throughput is proportional to the GPU time the process gets (no
// memory traffic to share).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#include <cuda_runtime.h>
#include "check.cuh"

__global__ void burn(float *out, int iters) {
    float a = threadIdx.x * 1e-3f, b = 1.0001f, c = 0.9999f;
    for (int i = 0; i < iters; i++) {
        a = fmaf(a, b, c);
        b = fmaf(b, c, a);
        c = fmaf(c, a, b);
    }
    if (a + b + c == 1234.5f) out[blockIdx.x] = a;  // practically never: keeps the chain alive
}

// START_AT (Unix time, seconds): co-located runs start their measured loops together.
static void wait_start() {
    const char *at = std::getenv("START_AT");
    if (at == nullptr) return;
    double wait = std::atof(at) - std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    if (wait > 0 && wait < 60) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
}

int main(int argc, char **argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: compute_burn calibrate MS | burn SECONDS ITERS | latency SECONDS ITERS K PERIOD_MS\n");
        return 2;
    }
    int sms = 0;
    CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    // BURN_BLOCKS fixes the grid across runs: under MPS the SM count the device reports is
    // the client's share, and a grid sized from it would do less work per kernel.
    int blocks = std::getenv("BURN_BLOCKS") ? std::atoi(std::getenv("BURN_BLOCKS")) : sms * 8, threads = 256;
    float *out = nullptr;
    CHECK(cudaMalloc(&out, blocks * sizeof(float)));
    cudaStream_t s;
    CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    if (std::strcmp(argv[1], "calibrate") == 0) {
        double want_ms = std::atof(argv[2]);
        cudaEvent_t e0, e1;
        CHECK(cudaEventCreate(&e0));
        CHECK(cudaEventCreate(&e1));
        int iters = 1000;
        float ms = 0;
        for (int round = 0; round < 8; round++) {
            burn<<<blocks, threads, 0, s>>>(out, iters);  // warm
            CHECK(cudaEventRecord(e0, s));
            for (int i = 0; i < 5; i++) burn<<<blocks, threads, 0, s>>>(out, iters);
            CHECK(cudaEventRecord(e1, s));
            CHECK(cudaEventSynchronize(e1));
            CHECK(cudaEventElapsedTime(&ms, e0, e1));
            ms /= 5;
            if (ms > want_ms * 0.97 && ms < want_ms * 1.03) break;
            iters = std::max(1, (int)(iters * want_ms / ms));
        }
        std::printf("{\"mode\": \"calibrate\", \"iters\": %d, \"kernel_ms\": %.4f, \"sms\": %d}\n", iters, ms, sms);
        return 0;
    }
    double seconds = std::atof(argv[2]);
    int iters = argc > 3 ? std::atoi(argv[3]) : 1000;
    if (std::strcmp(argv[1], "burn") == 0) {
        std::vector<long> bins((size_t)(seconds * 10) + 2, 0);
        burn<<<blocks, threads, 0, s>>>(out, iters);  // warm
        CHECK(cudaStreamSynchronize(s));
        wait_start();
        double t0 = now_s();
        // when the measured loop began (Unix time): a driver that starts runs ahead of their
        // START_AT (scripts/gpu/shares_run.py) checks that none began late
        double start = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
        long total = 0;
        for (;;) {
            for (int i = 0; i < 4; i++) burn<<<blocks, threads, 0, s>>>(out, iters);
            CHECK(cudaStreamSynchronize(s));
            double t = now_s() - t0;
            if (t >= seconds) break;
            bins[(size_t)(t * 10)] += 4;
            total += 4;
        }
        std::printf("{\"mode\": \"burn\", \"iters\": %d, \"kernels\": %ld, \"start\": %.3f, \"bin_s\": 0.1, \"bins\": [", iters,
                    total, start);
        for (size_t i = 0; i < (size_t)(seconds * 10); i++) std::printf("%s%ld", i ? ", " : "", bins[i]);
        std::printf("]}\n");
        return 0;
    }
    if (std::strcmp(argv[1], "latency") == 0 && argc > 5) {
        int k = std::atoi(argv[4]);
        double period = std::atof(argv[5]) / 1000.0;
        std::vector<double> lat;
        burn<<<blocks, threads, 0, s>>>(out, iters);
        CHECK(cudaStreamSynchronize(s));
        wait_start();
        double t0 = now_s(), next = t0;
        while (now_s() - t0 < seconds) {
            double a = now_s();
            for (int i = 0; i < k; i++) burn<<<blocks, threads, 0, s>>>(out, iters);
            CHECK(cudaStreamSynchronize(s));
            lat.push_back((now_s() - a) * 1000.0);
            next += period;
            double wait = next - now_s();
            if (wait > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait));
        }
        std::sort(lat.begin(), lat.end());
        auto q = [&](double p) { return lat[std::min(lat.size() - 1, (size_t)(p * lat.size()))]; };
        std::printf("{\"mode\": \"latency\", \"requests\": %zu, \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
                    "\"max_ms\": %.3f}\n", lat.size(), q(0.5), q(0.9), q(0.99), lat.back());
        return 0;
    }
    std::fprintf(stderr, "unknown mode %s\n", argv[1]);
    return 2;
}
