# native/exec/exec.mk: gpushare-exec, the parent of every task's command (see gpushare_exec.c).
# Self-contained (every variable starts with EXEC_), paths relative to native/:
#
#   make -C native exec      build/native/gpushare-exec, build/native/gpushare-smprobe
#   make -C native exec-test the spawner's protocol (spawner_test.c) against a build with
#                            ASan + UBSan (part of `make test`: TEST_RUNS)
#
# Tested end to end by src/node/exec.test.ts and the daemon tests (test/daemon/).

EXEC_BIN := $(abspath $(CURDIR)/..)/build/native/gpushare-exec
# gpushare-smprobe: the driver's green-context SM groups per GPU, for the daemon (smprobe.c)
SMPROBE_BIN := $(abspath $(CURDIR)/..)/build/native/gpushare-smprobe
EXEC_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O2 -g
# Both binaries ship: stripped, and gpushare-smprobe built for glibc >= 2.28 (compat/ship.mk).
ifndef SHIP_DEPS
include compat/ship.mk
endif

.PHONY: exec
exec: $(EXEC_BIN) $(SMPROBE_BIN)

# claim.c: the launch's claim (exactly-once start); sandbox.c: the task's cgroup and
# unprivileged user, entered between fork and exec; grant.c: the task's compute grants
# (written as root before the command runs); spawner.c: `--spawner`, the daemon's
# long-lived process starter
EXEC_SRC := exec/gpushare_exec.c exec/claim.c exec/grant.c exec/sandbox.c exec/spawner.c
# Linked statically: it runs twice per task (the spawner's fork, the wrapper), and without the
# dynamic loader each exec costs less (the wrapper chain ran about 20% faster here:
# docs/benchmarks.md); no loader variable can ever run code in it, which runs as root; and it
# needs no particular glibc on the machine. It calls nothing that needs NSS or dlopen.
$(EXEC_BIN): $(EXEC_SRC) exec/claim.h exec/grant.h exec/sandbox.h exec/spawner.h region/gpushare_board.h exec/exec.mk
	@mkdir -p $(@D)
	$(CC) $(EXEC_CFLAGS) -static -o $@ $(EXEC_SRC)
	$(call SHIP_SPLIT_DEBUG,$@)

$(SMPROBE_BIN): exec/smprobe.c exec/exec.mk $(wildcard include/gs_cuda*.h) $(SHIP_DEPS) $(SHIP_START_SRC)
	@mkdir -p $(@D)
	$(CC) $(EXEC_CFLAGS) $(SHIP_CFLAGS) -Iinclude -o $@ exec/smprobe.c $(SHIP_START_SRC) $(SHIP_START_LDFLAGS) -ldl $(SHIP_LIBS)
	$(call SHIP_SPLIT_DEBUG,$@)

# The spawner under the sanitizers (SANITIZE: the Makefile's flags), driven by spawner_test.c.
EXEC_ASAN_BIN := $(abspath $(CURDIR)/..)/build/native/asan/gpushare-exec
EXEC_TEST_BIN := $(abspath $(CURDIR)/..)/build/native/tests/exec/spawner_test
TEST_RUNS += $(EXEC_TEST_BIN)@$(EXEC_ASAN_BIN)

.PHONY: exec-test
exec-test: $(EXEC_ASAN_BIN) $(EXEC_TEST_BIN)

$(EXEC_ASAN_BIN): $(EXEC_SRC) exec/claim.h exec/grant.h exec/sandbox.h exec/spawner.h region/gpushare_board.h exec/exec.mk
	@mkdir -p $(@D)
	$(CC) $(EXEC_CFLAGS) -O1 $(SANITIZE) -o $@ $(EXEC_SRC)

$(EXEC_TEST_BIN): exec/spawner_test.c exec/spawner.h exec/exec.mk
	@mkdir -p $(@D)
	$(CC) $(EXEC_CFLAGS) -O1 $(SANITIZE) -o $@ exec/spawner_test.c

