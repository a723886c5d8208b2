# fake_cuda.mk: builds and tests the fake CUDA driver (libcuda.so.1 on host memory).
# Self-contained, and includable from native/Makefile (every name is FAKECUDA_-prefixed).
#
#   make -C native -f testing/fake_cuda.mk                      the fake (fake-cuda)
#   make -C native -f testing/fake_cuda.mk check-cuda-headers   gs_cuda_*.h vs a real cuda.h
#   make -C native -f testing/fake_cuda.mk fake-cuda-test       ASan+UBSan build, C tests
#   make -C native -f testing/fake_cuda.mk fake-cuda-clean
#
# Outputs (relative to the repository root):
#   build/native/fake/libcuda.so.1          the fake driver (soname libcuda.so.1)
#   build/native/fake/asan/libcuda.so.1     the same with ASan + UBSan, for the tests
#   build/native/fake/fake-train            a stand-in training job (testing/tools/fake_train.c)
#   build/native/fake/fake-phases           a job in phases: idle, work, until, grow (testing/tools/fake_phases.c)
#   build/native/fake/tests/                test programs; build/native/fake/check-headers/
#
# check-cuda-headers looks for cuda.h in $(CUDA_INCLUDE_DIR), else /usr/local/cuda/include,
# and prints "SKIPPED (no cuda.h)" and succeeds without one. Nothing here needs the toolkit.

FAKECUDA_NATIVE := $(abspath $(dir $(lastword $(MAKEFILE_LIST)))/..)
FAKECUDA_BUILD := $(abspath $(FAKECUDA_NATIVE)/../build/native/fake)
FAKECUDA_OBJ := $(FAKECUDA_BUILD)/obj

FAKECUDA_CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
	-pthread -I$(FAKECUDA_NATIVE)/include -I$(FAKECUDA_NATIVE)/testing -MMD -MP
FAKECUDA_CFLAGS := $(FAKECUDA_CFLAGS_BASE) -O2 -g
# A sanitized library needs a sanitized executable to load it; -fno-sanitize-recover makes
# UBSan findings fatal.
FAKECUDA_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
FAKECUDA_CFLAGS_ASAN := $(FAKECUDA_CFLAGS_BASE) -O1 -g $(FAKECUDA_SANITIZE)

FAKECUDA_SRCS := $(addprefix $(FAKECUDA_NATIVE)/testing/,\
	fake_cuda_state.c fake_cuda_config.c fake_cuda_device.c fake_cuda_context.c fake_cuda_green.c \
	fake_cuda_stream.c fake_cuda_memory.c fake_cuda_pool.c fake_cuda_vmm.c fake_cuda_ipc.c fake_cuda_array.c \
	fake_cuda_launch.c fake_cuda_library.c fake_cuda_function.c fake_cuda_graph.c fake_cuda_procaddr.c fake_cuda_checkpoint.c fake_cuda_busy.c fake_cuda_sharedmem.c fake_cuda_launchlog.c json.c)
FAKECUDA_MAP := $(FAKECUDA_NATIVE)/testing/fake_cuda.map
FAKECUDA_LIB := $(FAKECUDA_BUILD)/libcuda.so.1
FAKECUDA_ASAN_LIB := $(FAKECUDA_BUILD)/asan/libcuda.so.1
FAKECUDA_LDFLAGS := -shared -Wl,-soname,libcuda.so.1 -Wl,--version-script=$(FAKECUDA_MAP) -Wl,-z,defs -pthread
FAKECUDA_REL_OBJS := $(patsubst $(FAKECUDA_NATIVE)/%.c,$(FAKECUDA_OBJ)/release/%.o,$(FAKECUDA_SRCS))
FAKECUDA_ASAN_OBJS := $(patsubst $(FAKECUDA_NATIVE)/%.c,$(FAKECUDA_OBJ)/asan/%.o,$(FAKECUDA_SRCS))

FAKECUDA_TEST_DIR := $(FAKECUDA_NATIVE)/testing/cuda
FAKECUDA_TEST_SUPPORT := $(FAKECUDA_TEST_DIR)/fake_cuda_test.c
FAKECUDA_TEST_SRCS := $(filter-out $(FAKECUDA_TEST_SUPPORT),$(wildcard $(FAKECUDA_TEST_DIR)/test_*.c))
FAKECUDA_TEST_BINS := $(patsubst $(FAKECUDA_TEST_DIR)/%.c,$(FAKECUDA_BUILD)/tests/%,$(FAKECUDA_TEST_SRCS))

.PHONY: fake-cuda fake-cuda-asan fake-cuda-test check-cuda-headers fake-cuda-check-exports fake-cuda-clean
.DELETE_ON_ERROR:

fake-cuda: $(FAKECUDA_LIB) $(FAKECUDA_BUILD)/fake-train $(FAKECUDA_BUILD)/fake-phases

# A stand-in training job for the daemon's suspend/resume tests (testing/tools/fake_train.c);
# it finds the fake libcuda.so.1 beside itself.
$(FAKECUDA_BUILD)/fake-train: $(FAKECUDA_NATIVE)/testing/tools/fake_train.c $(FAKECUDA_LIB)
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS) -o $@ $< $(FAKECUDA_LIB) -Wl,-rpath,'$$ORIGIN'

# A job in phases (idle, work, until, grow) for the daemon's overcommit tests (testing/tools/fake_phases.c).
$(FAKECUDA_BUILD)/fake-phases: $(FAKECUDA_NATIVE)/testing/tools/fake_phases.c $(FAKECUDA_LIB)
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS) -o $@ $< $(FAKECUDA_LIB) -Wl,-rpath,'$$ORIGIN'

fake-cuda-asan: $(FAKECUDA_ASAN_LIB)

$(FAKECUDA_LIB): $(FAKECUDA_REL_OBJS) $(FAKECUDA_MAP)
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS) $(FAKECUDA_LDFLAGS) -o $@ $(FAKECUDA_REL_OBJS)

$(FAKECUDA_ASAN_LIB): $(FAKECUDA_ASAN_OBJS) $(FAKECUDA_MAP)
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS_ASAN) $(FAKECUDA_LDFLAGS) -o $@ $(FAKECUDA_ASAN_OBJS)

$(FAKECUDA_OBJ)/release/%.o: $(FAKECUDA_NATIVE)/%.c
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS) -c -o $@ $<

$(FAKECUDA_OBJ)/asan/%.o: $(FAKECUDA_NATIVE)/%.c
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS_ASAN) -c -o $@ $<

# Tests link the sanitized fake by its soname and find it through LD_LIBRARY_PATH.
$(FAKECUDA_BUILD)/tests/%: $(FAKECUDA_TEST_DIR)/%.c $(FAKECUDA_TEST_SUPPORT) $(FAKECUDA_ASAN_LIB)
	@mkdir -p $(@D)
	$(CC) $(FAKECUDA_CFLAGS_ASAN) -o $@ $< $(FAKECUDA_TEST_SUPPORT) $(FAKECUDA_ASAN_LIB) -ldl

fake-cuda-test: fake-cuda-check-exports $(FAKECUDA_ASAN_LIB) $(FAKECUDA_TEST_BINS)
	@sh $(FAKECUDA_TEST_DIR)/run_fake_cuda_tests.sh "$(FAKECUDA_BUILD)/tests" "$(FAKECUDA_BUILD)/asan" "$(FAKECUDA_BUILD)/fake-cuda-test"

# Only cu* may be exported, and every prototype of gs_cuda_api.h must be.
fake-cuda-check-exports: $(FAKECUDA_LIB)
	@sh $(FAKECUDA_TEST_DIR)/check_fake_cuda_exports.sh "$(FAKECUDA_LIB)" "$(FAKECUDA_NATIVE)/include/gs_cuda_api.h"

check-cuda-headers:
	@CC="$(CC)" sh $(FAKECUDA_NATIVE)/testing/fake_cuda_check_headers.sh "$(FAKECUDA_BUILD)/check-headers" "$(FAKECUDA_NATIVE)"

fake-cuda-clean:
	rm -rf $(FAKECUDA_BUILD)/obj $(FAKECUDA_BUILD)/asan $(FAKECUDA_BUILD)/tests $(FAKECUDA_BUILD)/check-headers \
		$(FAKECUDA_LIB) $(FAKECUDA_BUILD)/fake-cuda-test

-include $(shell find $(FAKECUDA_OBJ) -name '*.d' 2>/dev/null)
