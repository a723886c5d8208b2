#!/bin/sh
# cudart_probe.sh BUILD_NATIVE_DIR [CUDA_HOME]: what the CUDA runtime asks of the remote client,
# on a machine without a GPU (docs/remote.md "What the CUDA runtime calls"). Builds
# cudart_probe.c against the toolkit's libcudart (CUDA_HOME, default /usr/local/cuda), runs it
# through the client libcuda.so.1 against a worker on the fake driver with
# GPUSHARE_REMOTE_LOG=1, and prints how far the runtime got, every export table it asked for
# (in order) and how many entry point names the client did not serve (the names are kept in
# BUILD_NATIVE_DIR/remote/cudart-probe/unserved.txt). A developer's probe, not a test: it
# reports, it does not judge (exit 0 unless it could not run).
set -u
B=$1
CUDA=${2:-${CUDA_HOME:-/usr/local/cuda}}
R="$B/remote"
W="$R/cudart-probe"
rt=$(ls "$CUDA"/lib64/libcudart.so.[0-9]* "$CUDA"/lib/libcudart.so.[0-9]* 2>/dev/null | head -n 1)
if [ -z "$rt" ] || [ ! -f "$CUDA/include/cuda_runtime_api.h" ]; then
    echo "cudart_probe: no CUDA toolkit at $CUDA (libcudart.so.N and include/cuda_runtime_api.h): nothing to probe"
    exit 0
fi
rm -rf "$W" && mkdir -p "$W"
${CC:-cc} -O1 -I"$CUDA/include" "$(dirname "$0")/cudart_probe.c" -o "$W/cudart_probe" "$rt" -Wl,-rpath,"$(dirname "$rt")" ||
    { echo "cudart_probe: build failed"; exit 2; }
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
env GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$B/fake" "$B/gpushare-remote-worker" --listen 127.0.0.1:0 >"$W/worker.out" 2>"$W/worker.err" &
WPID=$!
PORT=""
i=0
while [ -z "$PORT" ] && [ $i -lt 200 ]; do
    PORT=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\)$/\1/p' "$W/worker.out" 2>/dev/null)
    sleep 0.05; i=$((i + 1))
done
[ -n "$PORT" ] || { echo "cudart_probe: the worker did not start"; kill "$WPID" 2>/dev/null; exit 2; }
env LD_LIBRARY_PATH="$R" GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_LOG=1 \
    "$W/cudart_probe" >"$W/probe.out" 2>"$W/probe.err"
wait "$WPID" 2>/dev/null
echo "cudart_probe: $(basename "$rt") from $CUDA"
sed 's/^/  /' "$W/probe.out"
sed -n 's/^gpushare remote: cuGetProcAddress("\([^"]*\)").*/\1/p' "$W/probe.err" > "$W/unserved.txt"
echo "  export tables asked, in order: $(sed -n 's/^gpushare remote: cuGetExportTable(\([0-9a-f]*\)).*/\1/p' "$W/probe.err" | tr '\n' ' ')"
echo "  entry points asked and not served: $(wc -l < "$W/unserved.txt") ($W/unserved.txt)"
grep -v 'cuGetProcAddress(\|cuGetExportTable(' "$W/probe.err" | sed 's/^/  stderr: /' | head -n 5
exit 0
