#!/bin/sh
# build-arm64.sh: cross-builds the three native binaries the package ships for arm64
# (libgpushare.so, gpushare-exec, gpushare-smprobe) into build/native-arm64/, with the same
# glibc >= 2.28 pins as x86-64 (native/compat/ship.mk), stripped, and checks them with
# scripts/check-glibc.sh. When qemu-aarch64 is installed, also runs them on the fake CUDA driver
# (native/testing, built for arm64 too): the wrapper starts; the SM probe, with libgpushare
# preloaded, reads the fake GPU; and a job under a 128 MiB limit gets 64 MiB and is refused
# 256 MiB with CUDA_ERROR_OUT_OF_MEMORY, as on x86-64.
#
# Needs Debian's gcc-aarch64-linux-gnu (and qemu-user for the run); without the compiler it says
# so and exits 0, unless REQUIRE_ARM64=1. `make -C native test` runs it.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
CROSS=${CROSS:-aarch64-linux-gnu-}
if ! command -v "${CROSS}gcc" >/dev/null 2>&1; then
    echo "build-arm64: SKIPPED (no ${CROSS}gcc: apt-get install gcc-aarch64-linux-gnu)"
    [ "${REQUIRE_ARM64:-0}" = 1 ] && exit 1
    exit 0
fi
# native/'s build writes under ../build/native: a copy of native/ and scripts/ in a scratch tree
# keeps this build away from the host's.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -R "$root/native" "$root/scripts" "$work/"
rm -rf "$work/native/build"
make -s -C "$work/native" release fake-cuda CC="${CROSS}gcc" OBJCOPY="${CROSS}objcopy"
out="$root/build/native-arm64"
rm -rf "$out" && mkdir -p "$out/.debug"
for f in libgpushare.so gpushare-exec gpushare-smprobe; do
    cp "$work/build/native/$f" "$out/$f"
    cp "$work/build/native/.debug/$f.debug" "$out/.debug/"
done
for f in "$out"/libgpushare.so "$out"/gpushare-exec "$out"/gpushare-smprobe; do
    readelf -h "$f" | grep -q 'AArch64' || { echo "build-arm64: $f is not an arm64 binary" >&2; exit 1; }
done
if command -v qemu-aarch64 >/dev/null 2>&1; then
    sysroot=${ARM64_SYSROOT:-/usr/aarch64-linux-gnu}
    said=$(qemu-aarch64 "$out/gpushare-exec" --help 2>&1 || true)
    [ -n "$said" ] || { echo "build-arm64: gpushare-exec printed nothing under qemu" >&2; exit 1; }
    run() { qemu-aarch64 -L "$sysroot" -E LD_PRELOAD="$out/libgpushare.so" -E LD_LIBRARY_PATH="$work/build/native/fake" "$@" 2>&1 || true; }
    probe=$(run "$out/gpushare-smprobe")
    case $probe in
        *'"sms": 132'*) ;;
        *) echo "build-arm64: the SM probe did not read the fake GPU under qemu: $probe" >&2; exit 1 ;;
    esac
    limit=$((128 * 1024 * 1024))
    under=$(run -E GPUSHARE_MEMORY_LIMIT=$limit "$work/build/native/fake/fake-train" 1 1 64)
    over=$(run -E GPUSHARE_MEMORY_LIMIT=$limit "$work/build/native/fake/fake-train" 1 1 256)
    case $under in *"result ok"*) ;; *) echo "build-arm64: 64 MiB under a 128 MiB limit failed: $under" >&2; exit 1 ;; esac
    case $over in *"limit 128 MiB"*"CUresult 2"*) ;; *) echo "build-arm64: 256 MiB under a 128 MiB limit was not refused: $over" >&2; exit 1 ;; esac
    echo "build-arm64: ran under qemu-aarch64 on the fake driver: SM probe ok; 64 MiB under a 128 MiB limit ok, 256 MiB refused (out of memory)"
else
    echo "build-arm64: built and checked; not run (no qemu-aarch64: apt-get install qemu-user)"
fi
