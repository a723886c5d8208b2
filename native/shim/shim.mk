# native/shim/shim.mk: libgpushare.so (the LD_PRELOAD enforcement library) and its tests.
# Self-contained (every variable starts with SHIM_), paths relative to native/:
#
#   make -C native -f shim/shim.mk              build/native/libgpushare.so (release, -O2)
#   make -C native -f shim/shim.mk shim-asan    build/native/asan/libgpushare.so (ASan+UBSan)
#   make -C native -f shim/shim.mk shim-test    both, the fakes, then the C tests (TESTING.md)
#   make -C native -f shim/shim.mk shim-clean
#
# The region (region/region.c) and the config parser (shim/gs_config.c) are compiled in
# directly. The fake libcuda comes from testing/fake_cuda.mk and the fake NVML from
# native/Makefile (both invoked, never edited). The exported symbols are generated from
# shim/hooks.def into the version script, so the table stays the one list.

SHIM_ROOT := $(abspath $(CURDIR)/..)
SHIM_BUILD := $(SHIM_ROOT)/build/native
SHIM_OBJ := $(SHIM_BUILD)/shim/obj
SHIM_DEFAULT_GOAL := $(.DEFAULT_GOAL)

SHIM_CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fPIC -fvisibility=hidden -pthread \
	-Iinclude -Ishim -Iregion -MMD -MP
SHIM_CFLAGS := $(SHIM_CFLAGS_BASE) -O2 -g
SHIM_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
SHIM_CFLAGS_ASAN := $(SHIM_CFLAGS_BASE) -O1 -g $(SHIM_SANITIZE)
# dlsym.c must tail-call libc's dlsym (RTLD_NEXT is resolved from the return address), so
# it is built optimized and uninstrumented in both libraries.
SHIM_CFLAGS_DLSYM := $(SHIM_CFLAGS_BASE) -O2 -g -foptimize-sibling-calls -fno-stack-protector

# The release library ships: its objects are built for glibc >= 2.28 (compat/ship.mk). It
# defines its own dlsym, so references to dlsym stay ours (GS_GLIBC228_OWN_DLSYM).
ifndef SHIP_DEPS
include compat/ship.mk
endif
SHIM_SHIP_CFLAGS := $(SHIP_CFLAGS) -DGS_GLIBC228_OWN_DLSYM

SHIM_SRCS := shim/dispatch.c shim/state.c shim/track.c shim/memory.c shim/pool.c shim/context.c shim/info.c \
	shim/nvml.c shim/scrub.c shim/vmm.c shim/graph.c shim/swap.c shim/ipc.c shim/swap_ctl.c shim/swap_room.c shim/compute.c shim/compute_gate.c shim/compute_precise.c shim/compute_measure.c shim/compute_board.c shim/compute_board_user.c shim/compute_windows.c shim/compute_clock.c shim/compute_clock_read.c shim/hooks.c shim/partition.c shim/partition_round.c shim/log.c shim/gs_config.c region/region.c
SHIM_MAP := $(SHIM_BUILD)/shim/gpushare.map
SHIM_LIB := $(SHIM_BUILD)/libgpushare.so
SHIM_LIB_ASAN := $(SHIM_BUILD)/asan/libgpushare.so
SHIM_LDFLAGS := -shared -Wl,-soname,libgpushare.so -Wl,--version-script=$(SHIM_MAP) -Wl,-Bsymbolic \
	-Wl,-z,defs -pthread -ldl -lm
SHIM_REL_OBJS := $(patsubst %.c,$(SHIM_OBJ)/release/%.o,$(SHIM_SRCS) $(SHIP_FSTAT_SRC)) $(SHIM_OBJ)/release/shim/dlsym.o
SHIM_ASAN_OBJS := $(patsubst %.c,$(SHIM_OBJ)/asan/%.o,$(SHIM_SRCS)) $(SHIM_OBJ)/asan/shim/dlsym.o

# Tests: one program of scenarios plus two small libraries for the RTLD_NEXT check.
SHIM_TEST_DIR := $(SHIM_BUILD)/shim/tests
SHIM_TEST_BIN := $(SHIM_TEST_DIR)/shim_test
SHIM_TEST_BIN_REL := $(SHIM_TEST_DIR)/shim_test_release
SHIM_TEST_NEXT := $(SHIM_TEST_DIR)/libgsnext1.so $(SHIM_TEST_DIR)/libgsnext2.so
SHIM_FAKE_CUDA := $(SHIM_BUILD)/fake/libcuda.so.1
SHIM_FAKE_CUDA_ASAN := $(SHIM_BUILD)/fake/asan/libcuda.so.1
SHIM_FAKE_NVML := $(SHIM_BUILD)/fake/libnvidia-ml.so.1
SHIM_FAKE_NVML_ASAN := $(SHIM_BUILD)/asan/libnvidia-ml.so.1

.PHONY: shim shim-asan shim-test shim-clean shim-fakes
.DELETE_ON_ERROR:

# The benchmark program of bench/shim.bench.ts: release flags, linked against the release fake.
SHIM_BENCH := $(SHIM_TEST_DIR)/shim_bench
# The partition-size rule alone, for the daemon's parity test (src/domain/smpartition.test.ts).
SHIM_PARTITION_ROUND := $(SHIM_TEST_DIR)/partition_round

shim: $(SHIM_LIB) $(SHIM_BENCH) $(SHIM_PARTITION_ROUND)

ifneq ($(SHIM_DEFAULT_GOAL),)
.DEFAULT_GOAL := $(SHIM_DEFAULT_GOAL)
endif

shim-asan: $(SHIM_LIB_ASAN)

# Exported: dlsym and every GS_HOOK / GS_NVML_HOOK name of hooks.def and nvml_hooks.def; nothing else.
$(SHIM_MAP): shim/hooks.def shim/nvml_hooks.def shim/shim.mk
	@mkdir -p $(@D)
	{ printf '{\n  global:\n    dlsym;\n'; \
	  printf '#define GS_HOOK(name, ...) name;\n#define GS_NVML_HOOK(name, ...) name;\n#include "hooks.def"\n#include "nvml_hooks.def"\n' | \
	    $(CC) -E -P -Ishim -x c - | tr -s ' ;' '\n' | grep -v '^$$' | sed 's/^/    /; s/$$/;/'; \
	  printf '  local:\n    *;\n};\n'; } > $@

$(SHIM_LIB): $(SHIM_REL_OBJS) $(SHIM_MAP)
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -o $@ $(SHIM_REL_OBJS) $(SHIM_LDFLAGS) $(SHIP_FSTAT_LDFLAGS) $(SHIP_LIBS)
	$(call SHIP_SPLIT_DEBUG,$@)

$(SHIM_LIB_ASAN): $(SHIM_ASAN_OBJS) $(SHIM_MAP)
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -o $@ $(SHIM_ASAN_OBJS) $(SHIM_LDFLAGS)

$(SHIM_OBJ)/release/shim/dlsym.o: shim/dlsym.c $(SHIP_DEPS)
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_DLSYM) $(SHIM_SHIP_CFLAGS) -c -o $@ $<

$(SHIM_OBJ)/asan/shim/dlsym.o: shim/dlsym.c
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_DLSYM) -c -o $@ $<

$(SHIM_OBJ)/release/%.o: %.c $(SHIP_DEPS)
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) $(SHIM_SHIP_CFLAGS) -c -o $@ $<

$(SHIM_OBJ)/asan/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -c -o $@ $<

# ---- tests ------------------------------------------------------------------------------
shim-fakes:
	$(MAKE) -f testing/fake_cuda.mk fake-cuda fake-cuda-asan
	$(MAKE) -f Makefile $(SHIM_FAKE_NVML) $(SHIM_FAKE_NVML_ASAN)

$(SHIM_TEST_DIR)/libgsnext%.so: shim/tests/gsnext%.c
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -shared -fvisibility=default -Wl,-soname,libgsnext$*.so -o $@ $< -ldl

# Linked against the sanitized fake by soname (found through LD_LIBRARY_PATH at run time).
$(SHIM_TEST_BIN): shim/tests/shim_test.c shim/tests/test_check.h $(SHIM_TEST_NEXT) shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -DSHIM_TEST_NVML_LINKED -o $@ $< -L$(SHIM_TEST_DIR) -lgsnext1 -lgsnext2 $(SHIM_FAKE_CUDA_ASAN) \
		$(SHIM_FAKE_NVML_ASAN) -ldl -lpthread

# Included from native/Makefile the fake's own rule builds it; on our own, ask its makefile.
ifndef FAKECUDA_LIB
$(SHIM_FAKE_CUDA):
	$(MAKE) -f testing/fake_cuda.mk fake-cuda
endif

$(SHIM_PARTITION_ROUND): shim/tests/partition_round_main.c shim/partition_round.c shim/partition_round.h
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -o $@ shim/tests/partition_round_main.c shim/partition_round.c -lm

$(SHIM_BENCH): shim/tests/shim_bench.c $(SHIM_FAKE_CUDA)
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -o $@ $< $(SHIM_FAKE_CUDA) -ldl

# The issue's interface contract, exactly: release shim, release fake, no sanitizer. Not
# linked against NVML, so it also runs where there is none.
$(SHIM_TEST_BIN_REL): shim/tests/shim_test.c shim/tests/test_check.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS) -Itesting -DSHIM_TEST_NO_NEXT -o $@ $< $(SHIM_FAKE_CUDA) -ldl -lpthread

# The fake relinked with -Bsymbolic: like the real libcuda, its cuGetProcAddress then hands
# out its own entry points (not ours through interposition), so the reverse map is tested.
$(SHIM_TEST_DIR)/symbolic/libcuda.so.1: shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -shared -Wl,-soname,libcuda.so.1 -Wl,--version-script=testing/fake_cuda.map \
		-Wl,-Bsymbolic -pthread -o $@ $$(ls $(SHIM_BUILD)/fake/obj/asan/testing/*.o)

# The compute governor's scenarios (compute_test.c): ASan+UBSan, against the sanitized fake.
SHIM_COMPUTE_TEST := $(SHIM_TEST_DIR)/compute_test
$(SHIM_COMPUTE_TEST): shim/tests/compute_test.c shim/tests/test_check.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -lm -lpthread

# Slice swap's scenarios (swap_test.c, SWAP.md): ASan+UBSan, against the sanitized fake.
SHIM_SWAP_TEST := $(SHIM_TEST_DIR)/swap_test
$(SHIM_SWAP_TEST): shim/tests/swap_test.c shim/tests/test_check.h shim/tests/swap_ctl_connect.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -ldl -lpthread

# Waiting for room (swap_room_test.c, SWAP.md "Waiting for room"): the same way.
SHIM_SWAP_ROOM_TEST := $(SHIM_TEST_DIR)/swap_room_test
$(SHIM_SWAP_ROOM_TEST): shim/tests/swap_room_test.c shim/tests/test_check.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -ldl -lpthread

# IPC handles of swappable memory (ipc_test.c, SWAP.md "Sharing memory between processes"): the same way.
SHIM_IPC_TEST := $(SHIM_TEST_DIR)/ipc_test
$(SHIM_IPC_TEST): shim/tests/ipc_test.c shim/tests/test_check.h shim/tests/swap_ctl_connect.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -ldl -lpthread

# An overlapped hand-over between two task processes (swap_handover_test.c, SWAP.md "Hand-over").
SHIM_SWAP_HANDOVER_TEST := $(SHIM_TEST_DIR)/swap_handover_test
$(SHIM_SWAP_HANDOVER_TEST): shim/tests/swap_handover_test.c shim/tests/test_check.h shim/tests/swap_ctl_connect.h testing/fake_cuda_busy.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -ldl -lpthread

# A daemon or a task killed at each step of a swap (swap_fault_test.c, SWAP.md "Faults"): the same way.
SHIM_SWAP_FAULT_TEST := $(SHIM_TEST_DIR)/swap_fault_test
$(SHIM_SWAP_FAULT_TEST): shim/tests/swap_fault_test.c shim/tests/test_check.h shim/tests/swap_ctl_connect.h testing/fake_cuda_busy.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -Itesting -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -ldl -lpthread

shim-test: $(SHIM_LIB) $(SHIM_LIB_ASAN) $(SHIM_TEST_BIN) $(SHIM_TEST_BIN_REL) $(SHIM_TEST_DIR)/symbolic/libcuda.so.1 \
	$(SHIM_COMPUTE_TEST) $(SHIM_SWAP_TEST) $(SHIM_SWAP_ROOM_TEST) $(SHIM_IPC_TEST) $(SHIM_SWAP_HANDOVER_TEST) $(SHIM_SWAP_FAULT_TEST) \
	$(SHIM_TEST_DIR)/partition_test
	@sh shim/tests/run_shim_tests.sh "$(SHIM_ROOT)" "$(CC)"
	@sh shim/tests/run_partition_tests.sh "$(SHIM_ROOT)" "$(CC)"

# GPUSHARE_ISOLATION=sm-partition (partition.c) against the sanitized fake.
$(SHIM_TEST_DIR)/partition_test: shim/tests/partition_test.c shim/tests/test_check.h shim-fakes
	@mkdir -p $(@D)
	$(CC) $(SHIM_CFLAGS_ASAN) -o $@ $< $(SHIM_FAKE_CUDA_ASAN) -ldl -lpthread

shim-clean:
	rm -rf $(SHIM_BUILD)/shim $(SHIM_LIB) $(SHIM_LIB_ASAN)

-include $(shell find $(SHIM_OBJ) -name '*.d' 2>/dev/null)
