// empty_kernel.cu: the empty kernel driver_cost launches through the driver API (built to a cubin).
extern "C" __global__ void empty_kernel(int *p) {
    if (p != nullptr && threadIdx.x == 1024) *p = 1;  // never true: keeps the kernel from being elided
}
