#!/usr/bin/env bash
# Builds the real-GPU test programs here (CUDA toolkit needed, no GPU) into build/gpu/, so the
# GPU machine, which may have no toolkit, only runs them. driver_fill links by soname against
# our fake libcuda.so.1 and so loads the real driver there.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_INC=${CUDA_INC:-/usr/local/cuda/include}
mkdir -p build/gpu
[ -f build/native/fake/libcuda.so.1 ] || make -s -C native fake-cuda
gcc -O2 -Wall -I"$CUDA_INC" scripts/gpu/driver_fill.c -o build/gpu/driver_fill build/native/fake/libcuda.so.1
gcc -O2 -Wall -I"$CUDA_INC" scripts/gpu/driver_cost.c -o build/gpu/driver_cost build/native/fake/libcuda.so.1 -ldl
nvcc -cubin -arch=sm_90 -o build/gpu/empty.cubin scripts/gpu/empty_kernel.cu
nvcc -O2 -arch=sm_90 -o build/gpu/bench_launch scripts/gpu/bench_launch.cu
nvcc -O2 -arch=sm_90 -o build/gpu/partition_check scripts/gpu/partition_check.cu -Xlinker build/native/fake/libcuda.so.1
nvcc -O2 -arch=sm_90 -o build/gpu/compute_burn scripts/gpu/compute_burn.cu
ls build/gpu
