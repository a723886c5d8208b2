#!/bin/sh
# check-headers.sh OUT_DIR FALLBACK_INCLUDE_DIR
#
# Compares our NVML declarations (native/include/gs_nvml_types.h, gs_nvml_api.h) with
# NVIDIA's nvml.h, found in $NVML_INCLUDE_DIR, else /usr/local/cuda/include, else
# FALLBACK_INCLUDE_DIR (where `make fetch-nvml-header` puts it):
#
#   1. prototypes: one file includes nvml.h and then gs_nvml_api.h; C rejects a
#      redeclaration whose type conflicts with NVIDIA's.
#   2. layouts and values: one probe program, generated from gs_nvml_types.h, prints
#      sizeof/_Alignof of every struct and enum, offsetof/sizeof/type of every field and
#      the value of every constant. It is built once against our header and once against
#      nvml.h, and the two outputs must be identical.
#
# Declarations the found nvml.h does not have (it may be older than ours) are skipped,
# each with a line saying so. With no nvml.h anywhere the check is skipped and succeeds.
set -u

out=$1
fallback=$2
native=$(cd "$(dirname "$0")/.." && pwd)
types="$native/include/gs_nvml_types.h"
api="$native/include/gs_nvml_api.h"
CC=${CC:-cc}

if [ -n "${NVML_INCLUDE_DIR:-}" ]; then
    if [ ! -f "$NVML_INCLUDE_DIR/nvml.h" ]; then
        # Asked for explicitly: a wrong path is an error, not a reason to skip.
        echo "check-headers: FAIL (NVML_INCLUDE_DIR=$NVML_INCLUDE_DIR has no nvml.h)"
        exit 1
    fi
    dir=$NVML_INCLUDE_DIR
elif [ -f /usr/local/cuda/include/nvml.h ]; then
    dir=/usr/local/cuda/include
elif [ -f "$fallback/nvml.h" ]; then
    dir=$fallback
else
    echo "check-headers: SKIPPED (no nvml.h found: set NVML_INCLUDE_DIR)"
    exit 0
fi
real="$dir/nvml.h"
mkdir -p "$out" || exit 1
api_version=$(sed -n 's/^#define NVML_API_VERSION[[:space:]]\{1,\}\([0-9]\{1,\}\).*/\1/p' "$real" | head -n 1)
echo "check-headers: against $real (NVML_API_VERSION ${api_version:-unknown})"

# Whether the real header mentions NAME as a whole word (declared, defined or typedef'd).
in_real() {
    grep -Eq "(^|[^A-Za-z0-9_])$1([^A-Za-z0-9_]|\$)" "$real"
}

skipped=0
skip() {
    echo "check-headers:   skip $1 $2: not in this nvml.h (newer than it)"
    skipped=$((skipped + 1))
}

# ---- 1. prototypes ----------------------------------------------------------------------
functions=$(grep -oE '(^|[ *])nvml[A-Za-z0-9_]+\(' "$api" | sed -E 's/^[ *]//; s/\($//')
nfunctions=0
for f in $functions; do
    if grep -Eq "(^|[^A-Za-z0-9_])$f[[:space:]]*\(" "$real"; then
        nfunctions=$((nfunctions + 1))
    else
        skip function "$f"
    fi
done
printf '#include <nvml.h>\n#include "gs_nvml_api.h"\n' >"$out/prototypes.c"
if ! $CC -std=c11 -Wall -Wextra -Werror -fsyntax-only -I"$dir" -I"$native/include" "$out/prototypes.c" \
    >"$out/prototypes.log" 2>&1; then
    echo "check-headers: FAIL (a prototype in gs_nvml_api.h conflicts with nvml.h)"
    head -n 40 "$out/prototypes.log"
    exit 1
fi

# ---- 2. layouts and values --------------------------------------------------------------
# gs_nvml_types.h -> "S name" (struct), "F name field", "E name" (enum), "C name" (constant).
# It relies on the format rules written at the top of that header.
awk '
{ line = $0; sub(/\/\/.*$/, "", line); gsub(/\/\*[^*]*\*+([^\/*][^*]*\*+)*\//, "", line); sub(/[ \t]+$/, "", line) }
!in_struct && !in_enum && line ~ /^typedef struct [A-Za-z0-9_]+ *\{$/ { in_struct = 1; n = 0; next }
!in_struct && !in_enum && line ~ /^typedef enum [A-Za-z0-9_]+ *\{$/ { in_enum = 1; next }
in_struct && line ~ /^\} *[A-Za-z0-9_]+;$/ {
    name = line; gsub(/[};[:space:]]/, "", name); print "S", name
    for (i = 1; i <= n; i++) print "F", name, fields[i]
    in_struct = 0; next
}
in_struct && line ~ /;$/ {
    f = line; sub(/\[.*$/, "", f); sub(/;$/, "", f); sub(/[ \t]+$/, "", f)
    k = split(f, parts, /[ \t*]+/); fields[++n] = parts[k]; next
}
in_enum && line ~ /^\}/ { name = line; gsub(/[};[:space:]]/, "", name); print "E", name; in_enum = 0; next }
in_enum && line ~ /^[ \t]*[A-Za-z_][A-Za-z0-9_]*[ \t]*=/ {
    c = line; sub(/^[ \t]*/, "", c); sub(/[ \t]*=.*$/, "", c); print "C", c; next
}
!in_struct && !in_enum && line ~ /^#define (NVML_|nvml)[A-Za-z0-9_]*[ \t]/ {
    split(line, parts, /[ \t]+/); print "C", parts[2]
}
' "$types" >"$out/items.txt" || exit 1

probe="$out/probe.c"
{
    echo '#include <stddef.h>'
    echo '#include <stdio.h>'
    echo '#ifdef GS_PROBE_REAL'
    echo '#include <nvml.h>'
    echo '#else'
    echo '#include "gs_nvml_types.h"'
    echo '#endif'
    echo '#define GS_TYPE(x) _Generic((x), char: "char", signed char: "signed char", unsigned char: "unsigned char", \'
    echo '    short: "short", unsigned short: "unsigned short", int: "int", unsigned int: "unsigned int", \'
    echo '    long: "long", unsigned long: "unsigned long", long long: "long long", \'
    echo '    unsigned long long: "unsigned long long", float: "float", double: "double", char *: "char[]", \'
    echo '    default: "other")'
    echo 'int main(void)'
    echo '{'
} >"$probe"
# printf, not echo: dash's echo would turn the \n meant for the C string into a newline.
emit() {
    printf '%s\n' "$1" >>"$probe"
}
nstructs=0
nfields=0
nenums=0
nconstants=0
have_struct=""
while read -r kind name field; do
    case $kind in
    S)
        if in_real "$name"; then
            have_struct="$have_struct $name "
            nstructs=$((nstructs + 1))
            emit "    printf(\"struct $name size %zu align %zu\\n\", sizeof($name), _Alignof($name));"
        else
            skip struct "$name"
        fi
        ;;
    F)
        case $have_struct in
        *" $name "*)
            nfields=$((nfields + 1))
            m="((($name *)0)->$field)"
            emit "    printf(\"field $name.$field offset %zu size %zu type %s\\n\", offsetof($name, $field), sizeof $m, GS_TYPE($m));"
            ;;
        esac
        ;;
    E)
        if in_real "$name"; then
            nenums=$((nenums + 1))
            emit "    printf(\"enum $name size %zu\\n\", sizeof($name));"
        else
            skip enum "$name"
        fi
        ;;
    C)
        if in_real "$name"; then
            nconstants=$((nconstants + 1))
            emit "    printf(\"constant $name %lld\\n\", (long long)($name));"
        else
            skip constant "$name"
        fi
        ;;
    esac
done <"$out/items.txt"
printf '    return 0;\n}\n' >>"$probe"

if ! $CC -std=c11 -Wall -Werror -I"$native/include" -o "$out/probe-ours" "$probe" >"$out/probe-ours.log" 2>&1; then
    echo "check-headers: FAIL (probe does not build against gs_nvml_types.h)"
    head -n 40 "$out/probe-ours.log"
    exit 1
fi
# NVIDIA's header is not ours to keep warning-free, so no -Werror here; a field or
# constant it lacks is a compile error, reported as a mismatch.
if ! $CC -std=c11 -DGS_PROBE_REAL -I"$dir" -o "$out/probe-real" "$probe" >"$out/probe-real.log" 2>&1; then
    echo "check-headers: FAIL (probe does not build against nvml.h: a field or constant differs)"
    head -n 40 "$out/probe-real.log"
    exit 1
fi
"$out/probe-ours" >"$out/layout-ours.txt" && "$out/probe-real" >"$out/layout-real.txt" || {
    echo "check-headers: FAIL (probe did not run)"
    exit 1
}
if ! diff -u "$out/layout-real.txt" "$out/layout-ours.txt" >"$out/layout.diff"; then
    echo "check-headers: FAIL (layouts or values differ: - nvml.h, + ours)"
    sed -n '3,$p' "$out/layout.diff" | grep -E '^[-+]'
    exit 1
fi
echo "check-headers: OK ($nfunctions prototypes, $nstructs structs with $nfields fields, $nenums enums," \
    "$nconstants constants match; $skipped skipped)"
