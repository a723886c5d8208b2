#!/bin/sh
# fake_cuda_check_headers.sh BUILD_DIR NATIVE_DIR: proves gs_cuda_*.h against a real cuda.h.
#
#   1. prototypes: a TU includes cuda.h (all symbol names declared, old ABI included:
#      __CUDA_API_VERSION_INTERNAL) and then each line of gs_cuda_api.h; C rejects any
#      redeclaration that conflicts with NVIDIA's.
#   2. the cuGetProcAddress table: each row of gs_cuda_procs.h compiles as
#      `PFN_<name>_v<version>[_ptsz|_ptds] p = &symbol;` against cudaTypedefs.h.
#   3. layout: fake_cuda_layout.c, built against cuda.h and against gs_cuda_types.h,
#      prints every enum constant of gs_cuda_types.h and the sizes/offsets listed in
#      fake_cuda_layout.def; the two outputs must be identical.
# Names the found cuda.h lacks (an older toolkit) are skipped, each with a line saying so.
# No cuda.h at all: prints "SKIPPED (no cuda.h)" and succeeds.
# Looks in $CUDA_INCLUDE_DIR, else /usr/local/cuda/include. Uses $CC (default cc).
set -eu

build=$1
native=$2
cc=${CC:-cc}
inc=${CUDA_INCLUDE_DIR:-/usr/local/cuda/include}
api=$native/include/gs_cuda_api.h
procs=$native/include/gs_cuda_procs.h
types=$native/include/gs_cuda_types.h

if [ ! -f "$inc/cuda.h" ]; then
    echo "check-cuda-headers: SKIPPED (no cuda.h) - looked in $inc; set CUDA_INCLUDE_DIR to check"
    exit 0
fi

rm -rf "$build"
mkdir -p "$build"
cflags="-std=c11 -D_POSIX_C_SOURCE=200809L -I$inc -I$native/include -I$build"
skipped=0

# Every identifier the real headers declare, to tell "absent" from "different".
typedefs_h=
[ -f "$inc/cudaTypedefs.h" ] && typedefs_h="#include <cudaTypedefs.h>"
printf '#define __CUDA_API_VERSION_INTERNAL 1\n#include <cuda.h>\n%s\n' "$typedefs_h" > "$build/probe.c"
$cc $cflags -E -P "$build/probe.c" | tr -cs 'A-Za-z0-9_' '\n' | sort -u > "$build/idents.txt"
version=$(printf '#include <cuda.h>\nGS_VERSION=CUDA_VERSION\n' | $cc $cflags -E -P - | sed -n 's/^GS_VERSION=//p')
has() { grep -qx "$1" "$build/idents.txt"; }
skip() { echo "  SKIPPED $1"; skipped=$((skipped + 1)); }

# ---- 1. prototypes -------------------------------------------------------------------
n_protos=0
{
    echo '#define __CUDA_API_VERSION_INTERNAL 1'
    echo '#include <cuda.h>'
} > "$build/protos.c"
while IFS= read -r line; do
    name=$(echo "$line" | sed -n 's/^CUresult \([A-Za-z0-9_]*\)(.*/\1/p')
    [ -n "$name" ] || continue
    if has "$name"; then
        printf '#undef %s\n%s\n' "$name" "$line" >> "$build/protos.c"
        n_protos=$((n_protos + 1))
    else
        skip "prototype $name: not declared by this cuda.h"
    fi
done < "$api"
if ! $cc $cflags -c -o "$build/protos.o" "$build/protos.c"; then
    echo "check-cuda-headers: FAIL: gs_cuda_api.h conflicts with $inc/cuda.h (see above)"
    exit 1
fi

# ---- 2. cuGetProcAddress table -------------------------------------------------------
n_rows=0
if [ -n "$typedefs_h" ]; then
    {
        echo '#define __CUDA_API_VERSION_INTERNAL 1'
        echo '#include <cuda.h>'
        echo '#include <cudaTypedefs.h>'
    } > "$build/procs.c"
    sed -n 's/^ *X(\([A-Za-z0-9_]*\), \([0-9]*\), \([A-Za-z0-9_]*\), GS_CUDA_PROC_\([A-Z]*\)).*/\1 \2 \3 \4/p' "$procs" |
    while read -r name ver sym flavor; do
        case $flavor in
            PTSZ) pfn=PFN_${name}_v${ver}_ptsz ;;
            PTDS) pfn=PFN_${name}_v${ver}_ptds ;;
            *) pfn=PFN_${name}_v${ver} ;;
        esac
        if has "$pfn" && has "$sym"; then
            echo "$pfn const row_${sym}_$ver = &$sym;" >> "$build/procs.c"
            echo row >> "$build/rows.txt"
        else
            echo "  SKIPPED proc row ($name, $ver, $sym): no $pfn in cudaTypedefs.h" >> "$build/skips.txt"
        fi
    done
    [ -f "$build/skips.txt" ] && cat "$build/skips.txt" && skipped=$((skipped + $(wc -l < "$build/skips.txt")))
    [ -f "$build/rows.txt" ] && n_rows=$(wc -l < "$build/rows.txt")
    if ! $cc $cflags -Werror=incompatible-pointer-types -c -o "$build/procs.o" "$build/procs.c"; then
        echo "check-cuda-headers: FAIL: a gs_cuda_procs.h row maps a name to a symbol of another type"
        exit 1
    fi
else
    skip "cuGetProcAddress table: no cudaTypedefs.h in $inc"
fi

# ---- 3. layout -----------------------------------------------------------------------
: > "$build/fake_cuda_layout_entries.h"
n_layout=0
enums=$(sed -n -e 's/^ *\([A-Z][A-Za-z0-9_]*\) = .*,$/\1/p' -e 's/^ *X(\([A-Z][A-Za-z0-9_]*\), [-0-9x]*).*/\1/p' "$types")
for e in $enums; do
    if has "$e"; then
        echo "E($e)" >> "$build/fake_cuda_layout_entries.h"
        n_layout=$((n_layout + 1))
    else
        skip "enum constant $e: not in this cuda.h"
    fi
done
while IFS= read -r entry; do
    case $entry in
        S\(*) t=$(echo "$entry" | sed 's/^S(\(.*\))$/\1/'); need=$t ;;
        F\(*) t=$(echo "$entry" | sed 's/^F(\([^,]*\), .*/\1/'); need="$t $(echo "$entry" | sed 's/^F([^,]*, \(.*\))$/\1/' | tr '.' ' ')" ;;
        *) continue ;;
    esac
    ok=1
    for n in $need; do has "$n" || ok=0; done
    if [ $ok = 1 ]; then
        echo "$entry" >> "$build/fake_cuda_layout_entries.h"
        n_layout=$((n_layout + 1))
    else
        skip "layout $entry: this cuda.h lacks a name in it"
    fi
done < "$native/testing/fake_cuda_layout.def"
$cc $cflags -DGS_LAYOUT_USE_CUDA_H -o "$build/layout_cuda" "$native/testing/fake_cuda_layout.c"
$cc $cflags -Wall -Wextra -Werror -o "$build/layout_ours" "$native/testing/fake_cuda_layout.c"
"$build/layout_cuda" > "$build/layout_cuda.txt"
"$build/layout_ours" > "$build/layout_ours.txt"
if ! diff -u "$build/layout_cuda.txt" "$build/layout_ours.txt" > "$build/layout.diff"; then
    cat "$build/layout.diff"
    echo "check-cuda-headers: FAIL: gs_cuda_types.h differs from $inc/cuda.h (- theirs, + ours)"
    exit 1
fi

echo "check-cuda-headers: OK against $inc/cuda.h (CUDA_VERSION $version): $n_protos prototypes, $n_rows cuGetProcAddress rows, $n_layout layout facts; $skipped skipped"
