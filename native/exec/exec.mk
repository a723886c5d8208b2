# native/exec/exec.mk: gpushare-exec, the parent of every task's command (see gpushare_exec.c).
# Self-contained (every variable starts with EXEC_), paths relative to native/:
#
#   make -C native exec      build/native/gpushare-exec, build/native/gpushare-smprobe
#
# Tested end to end by src/node/exec.test.ts and the daemon tests (test/daemon/).

EXEC_BIN := $(abspath $(CURDIR)/..)/build/native/gpushare-exec
# gpushare-smprobe: the driver's green-context SM groups per GPU, for the daemon (smprobe.c)
SMPROBE_BIN := $(abspath $(CURDIR)/..)/build/native/gpushare-smprobe
EXEC_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -O2 -g

.PHONY: exec
exec: $(EXEC_BIN) $(SMPROBE_BIN)

# claim.c: the launch's claim (exactly-once start); sandbox.c: the task's cgroup and
# unprivileged user, entered between fork and exec; spawner.c: `--spawner`, the daemon's
# long-lived process starter
EXEC_SRC := exec/gpushare_exec.c exec/claim.c exec/sandbox.c exec/spawner.c
$(EXEC_BIN): $(EXEC_SRC) exec/claim.h exec/sandbox.h exec/spawner.h exec/exec.mk
	@mkdir -p $(@D)
	$(CC) $(EXEC_CFLAGS) -o $@ $(EXEC_SRC)

$(SMPROBE_BIN): exec/smprobe.c exec/exec.mk $(wildcard include/gs_cuda*.h)
	@mkdir -p $(@D)
	$(CC) $(EXEC_CFLAGS) -Iinclude -o $@ exec/smprobe.c -ldl
