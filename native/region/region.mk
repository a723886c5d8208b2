# native/region/region.mk: the shared region (libgpushare's shared accounting), its tests
# and tools. Self-contained, and written to be `include`d by native/Makefile later: every
# variable starts with REGION_, paths are relative to native/.
#
#   make -C native -f region/region.mk                  library + tools (target `region`)
#   make -C native -f region/region.mk region-test      C tests with ASan+UBSan, then TSan
#   make -C native -f region/region.mk region-test-tsan the threads test under TSan only
#   make -C native -f region/region.mk region-bench     attach time with 1, 64, 512 processes
#   make -C native -f region/region.mk region-clean
#
# Outputs (relative to the repository root), all under build/native/region/:
#   libgsregion.a          region.o for linking into libgpushare.so (-fPIC, hidden visibility)
#   asan/libgsregion.a     the same with ASan+UBSan, for sanitized tests
#   region_layout          prints sizeof/offsetof of every struct and field as JSON (TS test)
#   board_layout           the same for the compute board (gpushare_board.h)
#   region_fixture         makes a region with allocations in two processes (TS test)
#   region_attach_bench    attach-time benchmark (release build)
#   tests/                 C test programs (ASan+UBSan; *_tsan with ThreadSanitizer)

REGION_ROOT := $(abspath $(CURDIR)/..)
REGION_BUILD := $(REGION_ROOT)/build/native/region
REGION_SRC := region
REGION_DEFAULT_GOAL := $(.DEFAULT_GOAL)

REGION_CFLAGS_BASE := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fPIC -fvisibility=hidden \
	-pthread -I$(REGION_SRC) -I$(REGION_SRC)/tests -MMD -MP
REGION_CFLAGS := $(REGION_CFLAGS_BASE) -O2 -g
REGION_SANITIZE := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
REGION_CFLAGS_ASAN := $(REGION_CFLAGS_BASE) -O1 -g $(REGION_SANITIZE)
REGION_CFLAGS_TSAN := $(REGION_CFLAGS_BASE) -O1 -g -fsanitize=thread

REGION_LIB := $(REGION_BUILD)/libgsregion.a
REGION_LIB_ASAN := $(REGION_BUILD)/asan/libgsregion.a
REGION_TOOLS := $(REGION_BUILD)/region_layout $(REGION_BUILD)/board_layout $(REGION_BUILD)/region_fixture $(REGION_BUILD)/region_attach_bench
REGION_TEST_NAMES := test_region_basic test_region_threads test_region_procs test_region_attach
REGION_TESTS := $(addprefix $(REGION_BUILD)/tests/,$(REGION_TEST_NAMES))
REGION_TEST_TSAN := $(REGION_BUILD)/tests/test_region_threads_tsan
REGION_HEADERS := $(REGION_SRC)/gpushare_region.h $(REGION_SRC)/gs_region.h
REGION_TEST_SUPPORT := $(REGION_SRC)/tests/region_test.c $(REGION_SRC)/tests/region_test.h

.PHONY: region region-test region-test-asan region-test-tsan region-bench region-clean
.DELETE_ON_ERROR:

region: $(REGION_LIB) $(REGION_TOOLS)

ifneq ($(REGION_DEFAULT_GOAL),)
.DEFAULT_GOAL := $(REGION_DEFAULT_GOAL)
endif

$(REGION_BUILD)/obj/release/region.o: $(REGION_SRC)/region.c
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS) -c -o $@ $<

$(REGION_BUILD)/obj/asan/region.o: $(REGION_SRC)/region.c
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS_ASAN) -c -o $@ $<

$(REGION_BUILD)/obj/tsan/region.o: $(REGION_SRC)/region.c
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS_TSAN) -c -o $@ $<

$(REGION_LIB): $(REGION_BUILD)/obj/release/region.o
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

$(REGION_LIB_ASAN): $(REGION_BUILD)/obj/asan/region.o
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

# Tools run by the TypeScript tests and the benchmark: release builds.
$(REGION_BUILD)/region_layout: $(REGION_SRC)/tools/region_layout.c $(REGION_SRC)/tools/layout_json.h $(REGION_HEADERS)
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS) -o $@ $<

$(REGION_BUILD)/board_layout: $(REGION_SRC)/tools/board_layout.c $(REGION_SRC)/tools/layout_json.h $(REGION_SRC)/gpushare_board.h
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS) -o $@ $<

$(REGION_BUILD)/region_fixture: $(REGION_SRC)/tools/region_fixture.c $(REGION_LIB)
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS) -o $@ $< $(REGION_LIB)

$(REGION_BUILD)/region_attach_bench: $(REGION_SRC)/tests/test_region_attach.c $(REGION_TEST_SUPPORT) $(REGION_LIB)
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS) -o $@ $< $(REGION_SRC)/tests/region_test.c $(REGION_LIB)

$(REGION_BUILD)/tests/%: $(REGION_SRC)/tests/%.c $(REGION_TEST_SUPPORT) $(REGION_LIB_ASAN)
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS_ASAN) -o $@ $< $(REGION_SRC)/tests/region_test.c $(REGION_LIB_ASAN)

$(REGION_TEST_TSAN): $(REGION_SRC)/tests/test_region_threads.c $(REGION_TEST_SUPPORT) $(REGION_BUILD)/obj/tsan/region.o
	@mkdir -p $(@D)
	$(CC) $(REGION_CFLAGS_TSAN) -o $@ $< $(REGION_SRC)/tests/region_test.c $(REGION_BUILD)/obj/tsan/region.o

region-test: $(REGION_TESTS) $(REGION_TEST_TSAN) $(REGION_TOOLS)
	@sh $(REGION_SRC)/run-region-tests.sh $(REGION_TESTS) $(REGION_TEST_TSAN)

region-test-asan: $(REGION_TESTS)
	@sh $(REGION_SRC)/run-region-tests.sh $(REGION_TESTS)

region-test-tsan: $(REGION_TEST_TSAN)
	@sh $(REGION_SRC)/run-region-tests.sh $(REGION_TEST_TSAN)

region-bench: $(REGION_BUILD)/region_attach_bench
	@$(REGION_BUILD)/region_attach_bench

region-clean:
	rm -rf $(REGION_BUILD)

-include $(wildcard $(REGION_BUILD)/obj/*/*.d $(REGION_BUILD)/tests/*.d $(REGION_BUILD)/*.d)
