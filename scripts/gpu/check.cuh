// check.cuh: shared by the CUDA test programs in scripts/gpu/ that print one JSON line.
#pragma once
#include <chrono>
#include <cstdio>
#include <cuda_runtime.h>

// Monotonic seconds, for intervals.
static inline double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A failed CUDA runtime call: the error as the program's one JSON line, exit status 1 (from main).
#define CHECK(call)                                                                           \
    do {                                                                                      \
        cudaError_t e = (call);                                                               \
        if (e != cudaSuccess) {                                                               \
            std::printf("{\"error\": \"%s at line %d\"}\n", cudaGetErrorString(e), __LINE__); \
            return 1;                                                                         \
        }                                                                                     \
    } while (0)
