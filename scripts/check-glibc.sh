#!/bin/sh
# check-glibc.sh [--max 2.28] [BINARY...]: fails unless every binary loads on glibc >= MAX.
#
# Reads what the dynamic loader will check, the binary's version needs (readelf -V), and lists
# every symbol that needs a newer GLIBC_ version (or a version that is not a plain number, such
# as GLIBC_ABI_DT_RELR or GLIBC_PRIVATE). Also checks that a binary using functions that lived
# in libdl, libpthread or librt before glibc 2.34 names those libraries (DT_NEEDED): an old
# loader finds the functions only there (native/compat/glibc228.h). A static binary passes
# when it has no program interpreter. Default binaries: the five the package ships.
#
# Exit 0: all pass; 1: some binary needs more (listed); 2: usage or missing tool/binary.
set -eu

max=2.28
if [ "${1:-}" = "--max" ]; then max=${2:?--max needs a version}; shift 2; fi
root=$(cd "$(dirname "$0")/.." && pwd)
if [ "$#" -eq 0 ]; then
    set -- "$root/build/native/libgpushare.so" "$root/build/native/gpushare-exec" "$root/build/native/gpushare-smprobe" \
        "$root/build/native/gpushare-remote-worker" "$root/build/native/remote/libcuda.so.1" "$root/build/native/remote/libnvidia-ml.so.1"
fi
for tool in readelf objdump awk; do
    command -v "$tool" >/dev/null 2>&1 || { echo "check-glibc: needs $tool (binutils)" >&2; exit 2; }
done

# newer A B: true when version A (dotted numbers) is above B.
newer() {
    awk -v a="$1" -v b="$2" 'BEGIN {
        na = split(a, x, "."); nb = split(b, y, ".");
        for (i = 1; i <= (na > nb ? na : nb); i++) { if (x[i] + 0 > y[i] + 0) exit 0; if (x[i] + 0 < y[i] + 0) exit 1 }
        exit 1 }'
}

failed=0
for bin in "$@"; do
    if [ ! -f "$bin" ]; then echo "check-glibc: $bin: missing (build it: npm run build)" >&2; exit 2; fi
    name=${bin#"$root"/}
    if ! readelf -d "$bin" 2>/dev/null | grep -q '(NEEDED)'; then
        if readelf -lW "$bin" | grep -q 'INTERP'; then
            echo "FAIL $name: has a program interpreter but no libraries"; failed=1
        else
            echo "ok   $name: static, needs no glibc"
        fi
        continue
    fi
    # Every GLIBC_ version the binary needs, from its version-needs section.
    needs=$(readelf -VW "$bin" | awk '/\.gnu\.version_r/ { r = 1 } r && /Name: GLIBC/ { for (i = 1; i <= NF; i++) if ($i == "Name:") print $(i + 1) }' | sort -u)
    highest=2.2.5
    bad=""
    for v in $needs; do
        n=${v#GLIBC_}
        case $n in
            *[!0-9.]*) bad="$bad $v" ;;
            *) if newer "$n" "$max"; then bad="$bad $v"; elif newer "$n" "$highest"; then highest=$n; fi ;;
        esac
    done
    # name@version of every symbol the binary takes from elsewhere.
    syms=$(objdump -T "$bin" | awk '$0 ~ /\*UND\*/ { v = $(NF - 1); gsub(/[()]/, "", v); print $NF "@" v }')
    if [ -n "$bad" ]; then
        failed=1
        echo "FAIL $name: needs more than GLIBC_$max:"
        for v in $bad; do
            echo "$syms" | awk -F@ -v v="$v" '$2 == v { printf "       %s@%s\n", $1, $2 }'
            echo "$syms" | grep -q "@$v\$" || echo "       (version $v, required by the binary itself)"
        done
    fi
    needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\].*/\1/p')
    missing=""
    want() { echo "$syms" | grep -Eq "^($1)@" && ! echo "$needed" | grep -qx "$2" && missing="$missing $2"; return 0; }
    want 'dlopen|dlclose|dlsym|dlvsym|dlerror|dladdr|dladdr1|dlinfo|dlmopen' libdl.so.2
    want 'pthread_[a-z_]*|sem_[a-z]*' libpthread.so.0
    want 'shm_open|shm_unlink|timer_[a-z]*|aio_[a-z0-9]*|lio_listio[0-9]*|mq_[a-z]*' librt.so.1
    if [ -n "$missing" ]; then
        failed=1
        echo "FAIL $name: uses functions glibc < 2.34 keeps in$missing, without linking it (native/compat/ship.mk: SHIP_LIBS)"
    fi
    [ -z "$bad" ] && [ -z "$missing" ] && echo "ok   $name: needs GLIBC_$highest at most (limit $max)"
done
exit "$failed"
