# native/remote/remote.mk: remote GPUs (docs/remote.md): the wire codec, the per-session
# worker and the drop-in client libcuda.so.1. Every variable starts with REMOTE_; paths
# relative to native/. Included by native/Makefile:
#
#   make -C native remote        build/native/gpushare-remote-worker, build/native/remote/libcuda.so.1
#   make -C native remote-test   the codec fuzz test, the client's parsers, the end-to-end tests over loopback
#                                (ASan+UBSan worker and client, the fake driver, libgpushare)
#   make -C native remote-cudart-app     the nvcc-built runtime-API test program, for the GPU check
#   make -C native remote-cudart-probe   what a CUDA toolkit's libcudart asks of the client
#   make -C native remote-cublas-probe CUBLAS_DIR=...   how far cuBLAS's start gets, traced
#                                (CUDA_HOME, default /usr/local/cuda), on the fake driver
#
# The worker links against libcuda.so.1 by soname (the fake at build time, the real driver or
# the fake at run time, through the library path), as a CUDA program does; under the daemon it
# runs with libgpushare preloaded.

# The worker and the client ship (package.json "files"): built for glibc >= 2.28 and stripped,
# as libgpushare is (compat/ship.mk).
ifndef SHIP_DEPS
include compat/ship.mk
endif

REMOTE_BUILD := $(abspath $(CURDIR)/..)/build/native/remote
REMOTE_WORKER := $(abspath $(CURDIR)/..)/build/native/gpushare-remote-worker
REMOTE_CLIENT := $(REMOTE_BUILD)/libcuda.so.1
# The NVML calls frameworks make, answered through the client libcuda.so.1 (its one connection).
REMOTE_NVML := $(REMOTE_BUILD)/libnvidia-ml.so.1
REMOTE_NVML_MAP := $(REMOTE_BUILD)/nvml.map
REMOTE_NVML_LDFLAGS := -shared -Wl,-soname,libnvidia-ml.so.1 -Wl,--version-script=$(REMOTE_NVML_MAP) -Wl,-z,defs -pthread
REMOTE_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fPIC -fvisibility=hidden -pthread -Iinclude -Iremote
REMOTE_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
REMOTE_FAKE_DIR := $(abspath $(CURDIR)/..)/build/native/fake

REMOTE_CODEC_SRCS := remote/proto.c remote/net.c remote/tls.c remote/compress.c
REMOTE_WORKER_SRCS := remote/worker.c remote/worker_calls.c remote/worker_copy.c remote/worker_lanes.c remote/worker_queries.c remote/table.c $(REMOTE_CODEC_SRCS)
REMOTE_CLIENT_SRCS := remote/client_conn.c remote/client_api.c remote/client_procs.c remote/client_runtime.c remote/client_export.c remote/client_kparams.c remote/client_unified.c remote/client_queries.c remote/client_calls.c remote/client_raw.c remote/md2.c $(REMOTE_CODEC_SRCS)
REMOTE_HDRS := $(wildcard remote/*.h) $(wildcard include/gs_cuda*.h) remote/remote.mk
REMOTE_STUBS := $(REMOTE_BUILD)/client_stubs.c
REMOTE_MAP := $(REMOTE_BUILD)/client.map
REMOTE_CLIENT_LDFLAGS := -shared -Wl,-soname,libcuda.so.1 -Wl,--version-script=$(REMOTE_MAP) -Wl,-z,defs -pthread

REMOTE_T := $(REMOTE_BUILD)/tests
REMOTE_ASAN_WORKER := $(REMOTE_BUILD)/asan/gpushare-remote-worker
REMOTE_ASAN_CLIENT := $(REMOTE_BUILD)/asan/libcuda.so.1
REMOTE_ASAN_NVML := $(REMOTE_BUILD)/asan/libnvidia-ml.so.1
REMOTE_TEST_BINS := $(REMOTE_T)/test_proto_fuzz $(REMOTE_T)/test_client_parse $(REMOTE_T)/test_client_unified $(REMOTE_T)/remote_app $(REMOTE_T)/remote_raw $(REMOTE_T)/remote_cudart $(REMOTE_T)/remote_calls $(REMOTE_T)/remote_clusters $(REMOTE_T)/libdriver_extras.so

.PHONY: remote remote-asan remote-test remote-cudart-probe remote-cudart-app remote-cublas-probe

remote: $(REMOTE_WORKER) $(REMOTE_CLIENT) $(REMOTE_NVML)
remote-asan: $(REMOTE_ASAN_WORKER) $(REMOTE_ASAN_CLIENT) $(REMOTE_ASAN_NVML)

# Every prototype of gs_cuda_api.h and client_raw.h that the client does not forward:
# NOT_SUPPORTED, logged once.
REMOTE_STUB_SRCS := remote/client_api.c remote/client_procs.c remote/client_runtime.c remote/client_unified.c remote/client_queries.c remote/client_calls.c remote/client_raw.c
$(REMOTE_STUBS): include/gs_cuda_api.h remote/client_raw.h $(REMOTE_STUB_SRCS) remote/gen_stubs.sh
	@mkdir -p $(@D)
	sh remote/gen_stubs.sh "include/gs_cuda_api.h remote/client_raw.h" $@ $(REMOTE_STUB_SRCS)

# The version scripts are written by these rules: rewritten when the rules change.
$(REMOTE_MAP): remote/remote.mk
	@mkdir -p $(@D)
	printf '{\n    global: cu*; gsr_remote_*;\n    local: *;\n};\n' > $@

$(REMOTE_NVML_MAP): remote/remote.mk
	@mkdir -p $(@D)
	printf '{\n    global: nvml*;\n    local: *;\n};\n' > $@

$(REMOTE_NVML): remote/nvml_client.c $(REMOTE_CLIENT) $(REMOTE_NVML_MAP) $(REMOTE_HDRS) $(SHIP_DEPS)
	$(CC) $(REMOTE_CFLAGS) $(SHIP_CFLAGS) -O2 -g $(REMOTE_NVML_LDFLAGS) -o $@ remote/nvml_client.c -L$(REMOTE_BUILD) -l:libcuda.so.1 $(SHIP_LIBS)
	$(call SHIP_SPLIT_DEBUG,$@)

$(REMOTE_ASAN_NVML): remote/nvml_client.c $(REMOTE_ASAN_CLIENT) $(REMOTE_NVML_MAP) $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) $(REMOTE_NVML_LDFLAGS) -o $@ remote/nvml_client.c -L$(REMOTE_BUILD)/asan -l:libcuda.so.1

$(REMOTE_CLIENT): $(REMOTE_CLIENT_SRCS) $(REMOTE_STUBS) $(REMOTE_MAP) $(REMOTE_HDRS) $(SHIP_DEPS)
	$(CC) $(REMOTE_CFLAGS) $(SHIP_CFLAGS) -O2 -g $(REMOTE_CLIENT_LDFLAGS) -o $@ $(REMOTE_CLIENT_SRCS) -Wno-unused-parameter $(REMOTE_STUBS) $(SHIP_LIBS)
	$(call SHIP_SPLIT_DEBUG,$@)

$(REMOTE_ASAN_CLIENT): $(REMOTE_CLIENT_SRCS) $(REMOTE_STUBS) $(REMOTE_MAP) $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) $(REMOTE_CLIENT_LDFLAGS) -o $@ $(REMOTE_CLIENT_SRCS) -Wno-unused-parameter $(REMOTE_STUBS)

$(REMOTE_WORKER): $(REMOTE_WORKER_SRCS) $(REMOTE_HDRS) $(REMOTE_FAKE_DIR)/libcuda.so.1 $(SHIP_DEPS) $(SHIP_START_SRC)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) $(SHIP_CFLAGS) -O2 -g -o $@ $(REMOTE_WORKER_SRCS) $(SHIP_START_SRC) $(SHIP_START_LDFLAGS) -L$(REMOTE_FAKE_DIR) -l:libcuda.so.1 $(SHIP_LIBS)
	$(call SHIP_SPLIT_DEBUG,$@)

$(REMOTE_ASAN_WORKER): $(REMOTE_WORKER_SRCS) $(REMOTE_HDRS) $(REMOTE_FAKE_DIR)/asan/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ $(REMOTE_WORKER_SRCS) -L$(REMOTE_FAKE_DIR)/asan -l:libcuda.so.1

$(REMOTE_T)/test_proto_fuzz: remote/tests/test_proto_fuzz.c remote/proto.c remote/compress.c $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/test_proto_fuzz.c remote/proto.c remote/compress.c -ldl -pthread

# The client's parsers of what the runtime hands it: MD2 (the integrity check) and cubin layouts.
$(REMOTE_T)/test_client_parse: remote/tests/test_client_parse.c remote/md2.c remote/client_kparams.c $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/test_client_parse.c remote/md2.c remote/client_kparams.c

# The client's default-direction copies: which addresses are the session's device memory.
$(REMOTE_T)/test_client_unified: remote/tests/test_client_unified.c remote/client_unified.c $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/test_client_unified.c remote/client_unified.c

# A driver-API program, linked against libcuda.so.1 by soname: the library path decides
# whether it reaches the fake directly or the remote client.
$(REMOTE_T)/remote_app: remote/tests/remote_app.c $(REMOTE_HDRS) $(REMOTE_FAKE_DIR)/asan/libcuda.so.1
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/remote_app.c -L$(REMOTE_FAKE_DIR)/asan -l:libcuda.so.1

# Calls the driver as the CUDA runtime does: dlopen("libcuda.so.1"), every entry point through
# cuGetProcAddress, fatbins through cuLibraryLoadData, launches through kernel handles, NVML.
$(REMOTE_T)/remote_cudart: remote/tests/remote_cudart.c remote/tests/runtime_check.h $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/remote_cudart.c -ldl

# The calls CuPy and PyTorch make after their start (client_queries.c, client_calls.c), taken
# through cuGetProcAddress.
$(REMOTE_T)/remote_calls: remote/tests/remote_calls.c remote/tests/runtime_check.h $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/remote_calls.c -ldl

# Preloaded into the worker: driver entry points the fake lacks (context queries, module globals).
$(REMOTE_T)/remote_clusters: remote/tests/remote_clusters.c remote/tests/runtime_check.h $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/remote_clusters.c -ldl

$(REMOTE_T)/libdriver_extras.so: remote/tests/driver_extras.c $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -shared -o $@ remote/tests/driver_extras.c -ldl

# A hand-driven protocol client for bad frames and disconnects at each stage.
$(REMOTE_T)/remote_raw: remote/tests/remote_raw.c $(REMOTE_CODEC_SRCS) $(REMOTE_HDRS)
	@mkdir -p $(@D)
	$(CC) $(REMOTE_CFLAGS) -O1 -g $(REMOTE_SANITIZE) -o $@ remote/tests/remote_raw.c $(REMOTE_CODEC_SRCS)

remote-test: $(REMOTE_TEST_BINS) $(REMOTE_ASAN_WORKER) $(REMOTE_ASAN_CLIENT) $(REMOTE_ASAN_NVML) $(REMOTE_CLIENT) $(REMOTE_NVML) $(REMOTE_WORKER) fake-cuda-asan shim-asan $(FAKE_NVML_ASAN_LIB)
	@$(REMOTE_T)/test_proto_fuzz
	@$(REMOTE_T)/test_client_parse
	@$(REMOTE_T)/test_client_unified
	@sh remote/tests/run_remote_tests.sh $(abspath $(CURDIR)/..)/build/native

# The nvcc-built runtime-API program (remote-test builds it too), for scripts/gpu-check-remote.sh
# on a GPU machine without a toolkit: carried there in build/native/remote. Static runtime:
# nothing else to carry.
REMOTE_CUDA_HOME ?= $(or $(CUDA_HOME),/usr/local/cuda)
remote-cudart-app: $(REMOTE_T)/cudart_app_static
$(REMOTE_T)/cudart_app_static: remote/tests/cudart_app.cu
	@mkdir -p $(@D)
	$(REMOTE_CUDA_HOME)/bin/nvcc -cudart static -o $@ remote/tests/cudart_app.cu

# How far cuBLAS's start gets over the client on the fake driver, traced (a probe, not part of
# test): CUBLAS_DIR=folder with libcublas.so.N and libcublasLt.so.N (default CUDA_HOME/lib64).
remote-cublas-probe: $(REMOTE_WORKER) $(REMOTE_CLIENT) $(REMOTE_NVML) fake-cuda
	@sh remote/tests/cublas_probe.sh $(abspath $(CURDIR)/..)/build/native $(CUBLAS_DIR)

# What a CUDA toolkit's libcudart asks of the client, without a GPU (a probe, not part of test).
remote-cudart-probe: $(REMOTE_WORKER) $(REMOTE_CLIENT) $(REMOTE_NVML) fake-cuda
	@sh remote/tests/cudart_probe.sh $(abspath $(CURDIR)/..)/build/native
