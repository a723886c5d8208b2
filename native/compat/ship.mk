# native/compat/ship.mk: how the binaries gpushare ships (libgpushare.so, gpushare-exec,
# gpushare-smprobe) are built: loadable on glibc >= 2.28 (glibc228.h says why), stripped, their
# debug info kept beside them. Self-contained (every variable starts with SHIP_), paths
# relative to native/; included by shim/shim.mk and exec/exec.mk. Test programs, the fakes
# and the ASan/UBSan builds stay on the host's glibc and keep their debug info.
#
# The glibc pins are for x86-64 and arm64 glibc, where they are known; elsewhere those
# variables are empty and the binaries need the building machine's glibc. A cross build names
# its compiler and binutils: make -C native release CC=aarch64-linux-gnu-gcc
# OBJCOPY=aarch64-linux-gnu-objcopy (scripts/build-arm64.sh).

SHIP_TARGET := $(shell $(CC) -dumpmachine 2>/dev/null)

OBJCOPY ?= objcopy

ifneq ($(filter x86_64-%-linux-gnu x86_64-linux-gnu aarch64-%-linux-gnu aarch64-linux-gnu,$(SHIP_TARGET)),)
# Old versions of libdl/libpthread functions (glibc228.h), for every object of a shipped binary.
SHIP_CFLAGS := -include compat/glibc228.h
# Where those lived before 2.34; linked by name (newer glibcs keep them as empty stubs), else
# an old loader would not load them and would not find the functions.
SHIP_LIBS := -Wl,--push-state,--no-as-needed -l:libdl.so.2 -l:libpthread.so.0 -Wl,--pop-state
# fstat became an export only in 2.33 (glibc228_fstat.c).
SHIP_FSTAT_SRC := compat/glibc228_fstat.c
SHIP_FSTAT_LDFLAGS := -Wl,--wrap=fstat
# Executables: the pre-2.34 __libc_start_main (glibc228_start.c).
SHIP_START_SRC := compat/glibc228_start.c
SHIP_START_LDFLAGS := -Wl,--wrap=__libc_start_main
endif

SHIP_DEPS := compat/glibc228.h compat/ship.mk

# $(call SHIP_SPLIT_DEBUG,binary): moves the debug info of a freshly linked binary to
# .debug/NAME.debug beside it (where gdb looks, through the debug link) and strips the rest
# of its static symbol table; the dynamic symbols stay. Run as the last step of its link rule.
SHIP_SPLIT_DEBUG = mkdir -p $(dir $(1)).debug && \
	$(OBJCOPY) --only-keep-debug $(1) $(dir $(1)).debug/$(notdir $(1)).debug && \
	$(OBJCOPY) --strip-debug --strip-unneeded --add-gnu-debuglink=$(dir $(1)).debug/$(notdir $(1)).debug $(1)
