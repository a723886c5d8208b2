#!/bin/sh
# cublas_probe.sh BUILD_NATIVE_DIR [CUBLAS_DIR]: how far cuBLAS's start (cublasCreate) gets over
# the remote client on a machine without a GPU (docs/remote.md "cuBLAS"). CUBLAS_DIR holds
# libcublas.so.N and libcublasLt.so.N (default: CUDA_HOME/lib64, /usr/local/cuda by default).
# Runs cublas_probe.c through the client libcuda.so.1 against a worker on the fake driver (with
# tests/driver_extras.c preloaded there, for module globals) with GPUSHARE_REMOTE_LOG=2, and
# prints cuBLAS's answer, the export tables asked, every refused call or slot, and the last
# calls before the end. A developer's probe, not a test: the fake driver runs no kernels and
# models no cuBLAS, so it reports and does not judge (exit 0 unless it could not run).
set -u
B=$1
CUDA=${CUDA_HOME:-/usr/local/cuda}
D=${2:-$CUDA/lib64}
R="$B/remote"
W="$R/cublas-probe"
T=$(dirname "$0")
lib=$(ls "$D"/libcublas.so.[0-9]* 2>/dev/null | head -n 1)
if [ -z "$lib" ]; then
    echo "cublas_probe: no libcublas.so.N in $D (pass a folder with libcublas and libcublasLt): nothing to probe"
    exit 0
fi
rm -rf "$W" && mkdir -p "$W"
${CC:-cc} -O1 -Wall -Wextra -Werror "$T/cublas_probe.c" -o "$W/cublas_probe" -ldl &&
    ${CC:-cc} -std=c11 -O1 -fPIC -shared -I"$T/../../include" -I"$T/.." "$T/driver_extras.c" -o "$W/libdriver_extras.so" -ldl ||
    { echo "cublas_probe: build failed"; exit 2; }
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
env GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$B/fake" LD_PRELOAD="$W/libdriver_extras.so" "$B/gpushare-remote-worker" --listen 127.0.0.1:0 \
    --accept-timeout-ms 20000 --idle-timeout-ms 60000 >"$W/worker.out" 2>"$W/worker.err" &
WPID=$!
PORT=""
i=0
while [ -z "$PORT" ] && [ $i -lt 200 ]; do
    PORT=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\)$/\1/p' "$W/worker.out" 2>/dev/null)
    sleep 0.05; i=$((i + 1))
done
[ -n "$PORT" ] || { echo "cublas_probe: the worker did not start"; kill "$WPID" 2>/dev/null; exit 2; }
env LD_LIBRARY_PATH="$R:$D" GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_LOG=2 \
    timeout 120 "$W/cublas_probe" "$lib" >"$W/probe.out" 2>"$W/probe.err"
wait "$WPID" 2>/dev/null
echo "cublas_probe: $(basename "$lib") from $D"
sed 's/^/  /' "$W/probe.out"
echo "  export tables asked, in order: $(sed -n 's/^gpushare remote: cuGetExportTable(\([0-9a-f]*\)).*/\1/p' "$W/probe.err" | awk '!seen[$0]++' | tr '\n' ' ')"
echo "  calls: $(grep -c '^gpushare remote: call ' "$W/probe.err"), refused: $(grep -c '^gpushare remote: call .* -> [1-9]' "$W/probe.err"); export slots refused: $(grep -c '^gpushare remote: cuGetExportTable .* slot .*\(not served\|-> [1-9]\)' "$W/probe.err")"
grep '^gpushare remote: call .* -> [1-9]\|^gpushare remote: cuGetExportTable .* slot .*\(not served\|-> [1-9]\)\|is not forwarded' "$W/probe.err" | head -n 10 | sed 's/^/  refused: /'
echo "  the last calls (trace in $W/probe.err):"
grep -v 'ask cuGetProcAddress\|call MODULE_UNLOAD\|call PRIMARY_CTX_RELEASE\|^[iI]!' "$W/probe.err" | tail -n 8 | sed 's/^/    /'
exit 0
