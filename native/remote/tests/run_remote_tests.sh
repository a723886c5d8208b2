#!/bin/sh
# run_remote_tests.sh BUILD_NATIVE_DIR: remote GPUs end to end over loopback (docs/remote.md).
# The worker (ASan+UBSan) runs on the sanitized fake driver, the driver-API test program
# (remote_app) reaches it through the sanitized client libcuda.so.1; remote_raw drives the
# protocol by hand. Each case checks what the program saw and how the worker ended.
set -u
B=$1
R="$B/remote"
T="$R/tests"
WORK="$R/test-work"
rm -rf "$WORK"
mkdir -p "$WORK"
# A sanitized library preloaded into a sanitized program: the runtime must come first.
ASAN_RT=$(${CC:-cc} -print-file-name=libasan.so)
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
pass=0
fail=0
WPID=""
PORT=""

ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() {
    fail=$((fail + 1)); echo "FAIL $1"
    for f in "$WORK"/*.out "$WORK"/*.err; do [ -s "$f" ] && sed "s|^|    $(basename "$f"): |" "$f" | tail -15; done
}

# start_worker [VAR=VALUE ...]: a worker on a free loopback port; sets WPID and PORT. With
# TLS=1 it is a --tls worker and FP gets its certificate's pin.
start_worker() {
    rm -f "$WORK"/*.out "$WORK"/*.err
    env GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$B/fake/asan:$B/asan" ASAN_OPTIONS=detect_leaks=1 "$@" \
        "$R/asan/gpushare-remote-worker" --listen 127.0.0.1:0 ${TLS:+--tls} ${WORKER_ARGS:-} --accept-timeout-ms "${ACCEPT_MS:-20000}" --idle-timeout-ms "${IDLE_MS:-20000}" \
        >"$WORK/worker.out" 2>"$WORK/worker.err" &
    WPID=$!
    i=0
    while [ $i -lt 200 ]; do
        PORT=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\)\( tls-sha256 [0-9a-f]\{64\}\)\{0,1\}$/\1/p' "$WORK/worker.out" 2>/dev/null)
        FP=$(sed -n 's/^gpushare-remote-worker listening [0-9]* tls-sha256 \([0-9a-f]\{64\}\)$/\1/p' "$WORK/worker.out" 2>/dev/null)
        [ -n "$PORT" ] && return 0
        sleep 0.05; i=$((i + 1))
    done
    echo "worker did not start"; cat "$WORK/worker.err"
    return 1
}

# worker_exit SECONDS: the worker's exit status once it ended, or 124 if it is still running.
worker_exit() {
    i=0
    while kill -0 "$WPID" 2>/dev/null && [ $i -lt $(($1 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
    if kill -0 "$WPID" 2>/dev/null; then kill -9 "$WPID"; wait "$WPID" 2>/dev/null; return 124; fi
    wait "$WPID"
}

# runtime_style PROG: a test program that dlopens the sanitized client with logging on; its
# output in app.out/app.err; true when it ran to its "PROG ok" line.
runtime_style() {
    env GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_LOG="${LOG_LEVEL:-1}" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
        "$T/$1" ${2:+"$2"} >"$WORK/app.out" 2>"$WORK/app.err" && grep -q "^$1 ok" "$WORK/app.out"
}

# seen N FILE PATTERN...: FILE has exactly N lines matching each PATTERN (a missing file has none).
seen() {
    seen_n=$1 seen_file=$2
    shift 2
    for seen_pattern in "$@"; do [ "$(grep -c -- "$seen_pattern" "$seen_file" 2>/dev/null)" = "$seen_n" ] || return 1; done
}

# worker_freed: the worker ended within 10 s, saying it freed everything.
worker_freed() { worker_exit 10 && grep -q 'everything freed' "$WORK/worker.err"; }

app() { env GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 "$T/remote_app" "$@"; }

# 1. A driver-API program end to end; the worker frees everything and exits 0 when it leaves.
start_worker
if app full >"$WORK/app.out" 2>"$WORK/app.err" && grep -q '^remote_app full ok' "$WORK/app.out" &&
    worker_freed; then
    ok "driver-API program over loopback: results, bounds, deferred errors; worker freed all and exited ($(grep batched "$WORK/app.out" | sed 's/remote_app: //'))"
else bad "driver-API program over loopback"; fi

# 1b. A program that calls the driver as the CUDA runtime does (remote_cudart.c): entry points
# through cuGetProcAddress, a fatbin through cuLibraryLoadData, launches through the kernel
# handle, NVML through the client's libnvidia-ml.so.1. The fake's launch log shows both launches
# reached the worker's driver; each unknown name and export table is logged once.
start_worker GPUSHARE_FAKE_CUDA_LAUNCH_LOG="$WORK/launches.log"
if runtime_style remote_cudart &&
    seen 2 "$WORK/launches.log" ' sleep_1000 ' &&
    seen 1 "$WORK/app.err" 'cuGetProcAddress("cuNoSuchEntryPoint"): not served' 'cuGetExportTable(f8cff95121468b4eb9e2fb469e7c0dd9): not served' \
        'cuGetExportTable(6bd5fb6c5bf4e74a8987d93912fd9df9): served (CUDART_INTERFACE)' &&
    worker_freed; then
    ok "runtime-style program: cuGetProcAddress (versions, per-thread forms, unknown names logged once), export tables (primary context, module load, context-local storage, integrity; an unknown one refused, each logged once), library/kernel launches, attributes, occupancy, NVML ($(grep nvml "$WORK/app.out" | sed 's/remote_cudart: nvml //'))"
else bad "runtime-style program (remote_cudart)"; fi

# 1b+. The same with GPUSHARE_REMOTE_LOG=2, the trace: every entry point asked (with its
# version and flavour), every served slot called and every call with its result, in order; the
# once-only lines of level 1 are still there, once.
start_worker
if LOG_LEVEL=2 runtime_style remote_cudart &&
    seen 1 "$WORK/app.err" 'cuGetProcAddress("cuNoSuchEntryPoint"): not served' &&
    grep -q '^gpushare remote: ask cuGetProcAddress("cuNoSuchEntryPoint", [0-9]*, legacy): not served$' "$WORK/app.err" &&
    grep -q '^gpushare remote: ask cuGetProcAddress("cuMemAlloc", [0-9]*, legacy): served$' "$WORK/app.err" &&
    grep -q '^gpushare remote: call MEM_ALLOC -> 0$' "$WORK/app.err" &&
    grep -q '^gpushare remote: call [A-Z_]* -> [1-9][0-9]* CUDA_ERROR_[A-Z_]*$' "$WORK/app.err" &&
    grep -q '^gpushare remote: cuGetExportTable CONTEXT_LOCAL_STORAGE slot [0-9] called -> [0-9]*$' "$WORK/app.err" &&
    grep -q '^gpushare remote: TOOLS_CONTEXT slot 94 args 0x1 0x2 0x3 0x4 0x5 0x6$' "$WORK/app.err" &&
    worker_freed; then
    ok "GPUSHARE_REMOTE_LOG=2 trace: entry points asked, calls with results (a refusal named), export slots called (an unknown slot with its arguments); level-1 lines once"
else bad "GPUSHARE_REMOTE_LOG=2 trace (remote_cudart)"; fi

# 1b++. What cuBLAS(Lt) asks of an sm_90 kernel and how it launches it (remote_clusters.c): dynamic
# shared memory per block, cluster occupancy, cuLaunchKernelEx with a cluster dimension (both
# launches in the fake's launch log); an event attribute, a too-large cluster, a forged handle refused.
start_worker GPUSHARE_FAKE_CUDA_LAUNCH_LOG="$WORK/launches.log"
if runtime_style remote_clusters &&
    seen 3 "$WORK/launches.log" '^cuLaunchKernelEx gemm_sm90_cluster ' &&
    seen 1 "$WORK/app.err" 'cuLaunchKernelEx: an event or graph launch attribute is not forwarded' &&
    worker_freed; then
    ok "cuBLAS's sm_90 needs: dynamic shared memory per block, cluster occupancy (sizes, active clusters), cuLaunchKernelEx with clusters on the worker, TMA descriptors encoded and re-addressed by the worker; refusals ($(sed -n 's/^remote_clusters ok: //p' "$WORK/app.out"))"
else bad "cuBLAS's sm_90 needs (remote_clusters)"; fi

# 1b'. What CuPy and PyTorch ask after their start (remote_calls.c): stream and context queries,
# events with flags, pointer attributes, globals, names, host functions, registered host memory,
# peers, the profiler, IPC (refused, logged once), 2D memsets and copies; forged handles refused; the
# worker frees everything.
start_worker
if runtime_style remote_calls &&
    seen 1 "$WORK/app.err" 'cuIpc\*: .*(CUDA_ERROR_NOT_SUPPORTED)' &&
    worker_freed; then
    ok "framework calls: capture state, stream/context queries, events with flags, pointer attributes, globals, names, host functions, registered host memory, peers, profiler, IPC refused, 2D memsets and copies; forged handles refused; worker freed all"
else bad "framework calls (remote_calls)"; fi
# The same with the driver's context queries and module globals (driver_extras.c preloaded into
# the worker): their answers pass through; a global's range takes copies, not cuMemFree, and
# goes with its module.
start_worker LD_PRELOAD="$ASAN_RT:$T/libdriver_extras.so"
if runtime_style remote_calls driver-extras && worker_freed; then
    ok "framework calls with the driver's context queries and module globals: answers passed through, a global's range copied both ways, bounds-checked, not freeable, gone with its module"
else bad "framework calls with the driver's extras (remote_calls driver-extras)"; fi
# The same against a worker whose driver has no libraries (protocol 5, cuLibrary* hidden): the
# client falls back to modules after the first NOT_SUPPORTED, logging no refusal for it.
start_worker LD_PRELOAD="$ASAN_RT:$T/libdriver_extras.so" DRIVER_EXTRAS_NO_LIBRARIES=1
if runtime_style remote_calls no-libraries && seen 0 "$WORK/app.err" 'module image refused (801)' && worker_freed; then
    ok "framework calls against a driver without libraries: libraries loaded as modules, no refusal logged for the fallback; worker freed all"
else bad "framework calls against a driver without libraries (remote_calls no-libraries)"; fi

# 1c. An unmodified CUDA runtime-API program (cudart_app.cu), built by nvcc with the runtime
# shared and static: the real libcudart through the client's export tables, its fatbin loaded
# before any context, <<<>>> launches packed by the cubin's layouts. Needs a CUDA toolkit
# (CUDA_HOME, default /usr/local/cuda) to build it: skipped, saying so, where there is none.
CUDA=${CUDA_HOME:-/usr/local/cuda}
if [ ! -x "$CUDA/bin/nvcc" ]; then
    echo "SKIP CUDA runtime-API program through the client: no nvcc at $CUDA/bin (set CUDA_HOME to a CUDA toolkit)"
else
    for mode in shared static; do
        if ! "$CUDA/bin/nvcc" -cudart "$mode" -o "$T/cudart_app_$mode" "$(dirname "$0")/cudart_app.cu" >"$WORK/nvcc.out" 2>&1; then
            bad "CUDA runtime-API program (-cudart $mode): nvcc failed"
            continue
        fi
        start_worker GPUSHARE_FAKE_CUDA_LAUNCH_LOG="$WORK/launches.log"
        rm -f "$WORK/launches.log"
        if env GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_LOG=1 LD_LIBRARY_PATH="$R/asan" \
            LD_PRELOAD="$ASAN_RT" ASAN_OPTIONS=detect_leaks=0 "$T/cudart_app_$mode" >"$WORK/app.out" 2>"$WORK/app.err" &&
            grep -q '^cudart_app ok' "$WORK/app.out" &&
            seen 1 "$WORK/launches.log" ' _Z5scalePffi blocks=256 ' ' sleep blocks=1 ' ' _Z5mixedcds5threePif blocks=2 ' &&
            seen 6 "$WORK/app.err" 'cuGetExportTable([0-9a-f]*): served' &&
            worker_freed; then
            ok "CUDA runtime-API program (nvcc -cudart $mode): device query, malloc/memcpy/memset round trips, 3 kernels launched on the worker, a stream, events timing the sleep kernel's parameter ($(sed -n 's/.*event-timed sleep \(.*\)/\1/p' "$WORK/app.out")); worker freed all"
        else bad "CUDA runtime-API program (nvcc -cudart $mode)"; fi
    done
fi

# 2. The session's memory limit holds: libgpushare in the worker, a 256 MiB slice (the fake's
# context costs 4 MiB of it).
start_worker GPUSHARE_FAKE_CUDA='{"contextBytes": 4194304}' LD_PRELOAD="$ASAN_RT $B/asan/libgpushare.so" GPUSHARE_MEMORY_LIMIT=256Mi
app limit >"$WORK/app.out" 2>"$WORK/app.err"
set -- $(sed -n 's/^limit //p' "$WORK/app.out") 
if [ $# -eq 3 ] && [ "$2" = 2 ] && [ "$3" = 268435456 ] && [ "$1" -le 268435456 ] && [ "$1" -ge $((200 << 20)) ] && worker_exit 10; then
    ok "memory limit through libgpushare in the worker: refused with OUT_OF_MEMORY after $(($1 >> 20)) MiB of a 256 MiB slice, total reads 256 MiB"
else bad "memory limit in the worker ($(cat "$WORK/app.out"))"; fi

# 3. A client killed mid-session: the worker notices, frees its memory, exits.
start_worker
# Not through app(): a function in the background is a subshell, and the kill must reach the program.
env GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
    "$T/remote_app" hold >"$WORK/app.out" 2>"$WORK/app.err" &
APID=$!
i=0; while ! grep -q holding "$WORK/app.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -9 $APID; wait $APID 2>/dev/null
start=$(date +%s)
if worker_freed; then
    ok "client SIGKILLed holding 64 MiB: worker freed everything and exited within $(($(date +%s) - start)) s"
else bad "client killed mid-session"; fi

# 4. The worker killed under a client: an error at the next call, not a hang.
start_worker
mkfifo "$WORK/in"
env GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
    "$T/remote_app" linkloss <"$WORK/in" >"$WORK/app.out" 2>"$WORK/app.err" &
APID=$!
exec 3>"$WORK/in"
i=0; while ! grep -q ready "$WORK/app.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
kill -9 "$WPID"; wait "$WPID" 2>/dev/null
echo go >&3
exec 3>&-
if wait $APID && grep -q 'linkloss ok' "$WORK/app.out"; then
    ok "worker killed: the client's next calls fail with CUDA_ERROR_DEVICE_UNAVAILABLE at once"
else bad "link loss on the client"; fi

# 5. No server configured, or a wrong key: cuInit fails cleanly.
if env -u GPUSHARE_REMOTE LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 "$T/remote_app" limit >"$WORK/app.out" 2>"$WORK/app.err"; then
    bad "no GPUSHARE_REMOTE: the program should fail"
elif grep -q 'cuInit(0) = 100' "$WORK/app.err"; then ok "no GPUSHARE_REMOTE: cuInit says CUDA_ERROR_NO_DEVICE"
else bad "no GPUSHARE_REMOTE"; fi

# 6. Bad frames and a client gone at each stage (remote_raw): expected worker exit status.
# raw_case MODE WANT WHAT [VERSION]: VERSION 2 makes remote_raw a version-2 client (4 MiB
# chunks, docs/remote.md "Handshake"); without it, a version-1 client as the older ones were.
raw_case() {
    mode=$1; want=$2; what=$3
    start_worker
    if env ${FP:+GSR_RAW_TLS_SHA256=$FP} ${4:+GSR_RAW_VERSION=$4} "$T/remote_raw" "$mode" "127.0.0.1:$PORT" "$KEY" >"$WORK/raw.out" 2>"$WORK/raw.err"; then
        worker_exit 10; got=$?
        if [ "$got" = "$want" ]; then ok "$what (worker exit $got)"; else bad "$what: worker exit $got, want $want"; fi
    else bad "$what: remote_raw"; fi
}
raw_case nohello 5 "connected and gone without a hello: handshake failed, worker ends"
raw_case badkey 5 "wrong key: refused (NOT_PERMITTED), connection closed"
raw_case oldversion 5 "no common version: refused (NOT_SUPPORTED)"
raw_case garbage 0 "a garbage header: connection dropped, session freed"
raw_case bigstray 0 "version-2 session: a 2 MiB DATA frame outside any copy dropped before it is read (no overflow of the call buffer)" 2
raw_case badpayload 0 "bad payload, forged handles and pointers: errors, the session lives; a stray DATA frame drops it"
raw_case midhtod 0 "client gone halfway through a host-to-device copy"
raw_case middtoh 0 "client gone while the worker sends a device-to-host copy"
raw_case midframe 0 "client gone inside a frame"
IDLE_MS=1000 raw_case stall 0 "a frame stalled halfway, the link kept: dropped at the idle timeout (1 s), not a hang"
# Copies (docs/remote.md "Copies"): a version-1 client (1 MiB frames) and a version-2 one (4 MiB,
# pipelined through the worker's ring), each a pattern both ways past the ring's wrap, bounds
# refused before a byte moves; a frame over the session's chunk drops the session; a client gone
# while the ring's copies are in flight each way.
raw_case copies 0 "version-1 client: 6 MiB + 12345 bytes both ways in 1 MiB frames, identical; one byte past the allocation refused, nothing written"
raw_case copies 0 "version-2 client: 24 MiB + 12345 bytes both ways in 4 MiB frames (pipelined, the ring wraps), identical; out of bounds refused" 2
raw_case bigframe 0 "version-1 session: a DATA frame of 1 MiB + 1 drops it"
raw_case bigframe 0 "version-2 session: a DATA frame of 4 MiB + 1 drops it" 2
raw_case midhtod 0 "version 2: client gone two chunks into a pipelined host-to-device copy" 2
# A driver that refuses to pin and has no events left: the same copies on pageable staging, each
# chunk waited for in place.
start_worker GPUSHARE_FAKE_CUDA='{"errors":{"cuMemHostAlloc":2,"cuEventCreate":2}}'
if env GSR_RAW_VERSION=2 "$T/remote_raw" copies "127.0.0.1:$PORT" "$KEY" >"$WORK/raw.out" 2>"$WORK/raw.err" && worker_exit 10; then
    ok "version 2, the driver refusing pinned memory and events: the same copies, identical (pageable ring, no pipeline)"
else bad "copies without pinned memory or events"; fi
raw_case middtoh 0 "version 2: client gone while the worker's ring sends a device-to-host copy" 2

# 6b. Bulk lanes (docs/remote.md "Bulk lanes"): a version-3 session's data connections, a copy of
# more than one chunk striped over them. lane_case MODE WANT WHAT [LOG]: remote_raw as a version-3
# client; the worker's exit status, everything freed, and LOG (a pattern) in its stderr.
lane_case() {
    start_worker
    if env ${FP:+GSR_RAW_TLS_SHA256=$FP} GSR_RAW_VERSION=${LANE_VERSION:-3} "$T/remote_raw" "$1" "127.0.0.1:$PORT" "$KEY" >"$WORK/raw.out" 2>"$WORK/raw.err"; then
        worker_exit 10; got=$?
        if [ "$got" = "$2" ] && grep -q 'everything freed' "$WORK/worker.err" && { [ -z "${4:-}" ] || grep -q -- "$4" "$WORK/worker.err"; }; then
            ok "$3 (worker exit $got, freed all)"
        else bad "$3: worker exit $got, want $2${4:+, log \"$4\"}"; fi
    else bad "$3: remote_raw"; fi
}
lane_case lanes 0 "bulk lanes, raw: 3 lanes, 4 MiB + 1 to 60 MiB + 12345 bytes (around the chunk and the stripe; each lane's ring wraps), aligned and at +4097, sync and async, both ways identical; out of bounds and a forged stream refused with the lanes kept in step (the data taken in, zeros sent); small copies on the control connection between; a second LANES_OPEN refused" '3 bulk lanes open'
LANE_VERSION=2 lane_case lanes 0 "bulk lanes asked by a version-2 session: refused (NOT_SUPPORTED), the session goes on"
lane_case laneslate 0 "bulk lanes asked after another request: refused (the listener is closed), the session goes on"
lane_case lanebadkey 5 "a lane with a wrong key: refused (NOT_PERMITTED), the session ends" 'lane 1 refused: wrong key'
lane_case lanebadtoken 5 "a lane with the key but a wrong lane token: refused, the session ends" 'lane 1 refused: wrong lane token'
lane_case lanebadindex 5 "a lane out of order: refused, the session ends" 'lane 1 refused: lane index'
lane_case lanedrop 0 "a lane closed halfway through a striped host-to-device copy: the session ends, not a hang" 'a bulk lane failed'
lane_case lanedropdtoh 0 "a lane closed while the worker sends a striped device-to-host copy: the session ends" 'a bulk lane failed'
lane_case lanebadframe 0 "a lane's chunk one byte short (out of step): the session ends" 'a bulk lane failed'
# Through the client library: two threads copying at once (one on a stream of its own, one on the
# per-thread default stream) at sizes around the
# chunk and the stripe, with 0 (one connection), 3 (uneven stripe), 8 and the default (16) lanes.
for lanes in 0 3 8 ""; do
    start_worker
    if env GPUSHARE_REMOTE_LANES="$lanes" GPUSHARE_REMOTE_LOG=1 GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
        "$T/remote_app" lanes >"$WORK/app.out" 2>"$WORK/app.err" && grep -q '^remote_app lanes ok' "$WORK/app.out" &&
        { [ "$lanes" = 0 ] && ! grep -q 'bulk lanes open' "$WORK/app.err" || grep -q "^gpushare remote: ${lanes:-16} bulk lanes open" "$WORK/app.err"; } &&
        worker_freed; then
        ok "client library, GPUSHARE_REMOTE_LANES=${lanes:-unset (16)}: two threads at once (a stream, the per-thread stream), 4 MiB - 1 to 68 MiB + 3 bytes, unaligned, sync and async, identical; out of bounds refused, nothing written; worker freed all"
    else bad "client library with GPUSHARE_REMOTE_LANES=${lanes:-unset}"; fi
done
# The worker killed in the middle of striped copies: the copy fails with DEVICE_UNAVAILABLE, then
# every call, never a hang.
start_worker
env GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
    "$T/remote_app" lanekill >"$WORK/app.out" 2>"$WORK/app.err" &
APID=$!
i=0; while ! grep -q copying "$WORK/app.out" 2>/dev/null && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
sleep 0.5
kill -9 "$WPID"; wait "$WPID" 2>/dev/null
start=$(date +%s)
if wait $APID && grep -q 'lanekill ok' "$WORK/app.out"; then
    ok "worker killed during striped copies: the copy and the next call fail with DEVICE_UNAVAILABLE within $(($(date +%s) - start)) s"
else bad "worker killed during striped copies"; fi
# A bad lane count: a clear error, cuInit fails, nothing sent.
if env GPUSHARE_REMOTE_LANES=17 GPUSHARE_REMOTE="127.0.0.1:1" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
    "$T/remote_app" limit >"$WORK/app.out" 2>"$WORK/app.err"; then bad "GPUSHARE_REMOTE_LANES=17 accepted"
elif grep -q 'cuInit(0) = 100' "$WORK/app.err" && grep -q 'GPUSHARE_REMOTE_LANES 0 to 16' "$WORK/app.err"; then ok "GPUSHARE_REMOTE_LANES=17: refused, said why, cuInit = NO_DEVICE"
else bad "GPUSHARE_REMOTE_LANES=17"; fi

# 6c. Compression (docs/remote.md "Compression"): a version-4 session's copy chunks, compressed
# where it pays. comp_case MODE WHAT [CODEC]: remote_raw as a version-4 client; the worker ends
# as it should (0), freed all, and (compressed) said what it compressed.
comp_case() {
    start_worker
    if env GSR_RAW_VERSION=4 ${3:+GSR_RAW_CODEC=$3} "$T/remote_raw" "$1" "127.0.0.1:$PORT" "$KEY" >"$WORK/raw.out" 2>"$WORK/raw.err"; then
        worker_exit 10; got=$?
        if [ "$got" = 0 ] && grep -q 'everything freed' "$WORK/worker.err"; then ok "$2 (worker exit 0, freed all; $(sed 's/^remote_raw //' "$WORK/raw.out"))"
        else bad "$2: worker exit $got"; fi
    else bad "$2: remote_raw"; fi
}
comp_case compressed "compression raw, lz4: 24 MiB + 12345 bytes both ways, compressible and random halves, identical, chunks compressed both ways and raw where it did not pay; a second COMPRESS refused" lz4
comp_case compressed "compression raw, zstd level 3: the same" zstd
comp_case lieover "a compressed chunk declaring 4 MiB + 1 (over the chunk): refused before decompressing, the session ends"
comp_case lieleft "a compressed chunk declaring 4 MiB where the copy has 100 bytes left: the session ends"
comp_case lieshort "a compressed chunk declaring 4 MiB that decompresses to 100 bytes less: the session ends"
comp_case liegarbage "a compressed chunk declaring 4 MiB whose codec bytes are noise: the session ends"
comp_case lieungranted "a compressed chunk in a session that never asked for compression: the session ends"
comp_case lielane "a compressed chunk on a bulk lane that decompresses short: the session ends (every lane shut)"
# Through the client library: 64 MiB compressible and random copies both ways (and + 12345 at an
# odd offset, async), 1 MiB and 100 bytes, with each codec, on one connection and on 8 lanes; the
# worker says how many chunks went compressed and raw each way (both must be > 0).
for spec in "lz4 0" "lz4 8" "zstd 0" "zstd:5 8"; do
    codec=${spec% *} lanes=${spec#* }
    start_worker
    if env GPUSHARE_REMOTE_COMPRESS="$codec" GPUSHARE_REMOTE_LANES="$lanes" GPUSHARE_REMOTE_LOG=1 GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" \
        LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 "$T/remote_app" compress >"$WORK/app.out" 2>"$WORK/app.err" &&
        grep -q '^remote_app compress ok' "$WORK/app.out" && grep -q "copies compressed with ${codec%%:*}" "$WORK/app.err" && worker_freed &&
        counts=$(sed -n 's/^gpushare-remote-worker: [a-z0-9]*: \([0-9]*\) chunks sent compressed, \([0-9]*\) raw; \([0-9]*\) received compressed$/\1 \2 \3/p' "$WORK/worker.err") &&
        set -- $counts && [ "${1:-0}" -gt 0 ] && [ "${2:-0}" -gt 0 ] && [ "${3:-0}" -gt 0 ]; then
        ok "client library, GPUSHARE_REMOTE_COMPRESS=$codec, GPUSHARE_REMOTE_LANES=$lanes: 64 MiB compressible and random both ways, sync and async, odd sizes and offsets, identical; out of bounds refused (worker sent $1 chunks compressed, $2 raw; received $3 compressed)"
    else bad "client library with GPUSHARE_REMOTE_COMPRESS=$codec, GPUSHARE_REMOTE_LANES=$lanes"; fi
done
# Two threads at once over 3 lanes with lz4 (whatever chunk pays goes compressed): identical.
start_worker
if env GPUSHARE_REMOTE_COMPRESS=lz4 GPUSHARE_REMOTE_LANES=3 GPUSHARE_REMOTE_LOG=1 GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
    "$T/remote_app" lanes >"$WORK/app.out" 2>"$WORK/app.err" && grep -q '^remote_app lanes ok' "$WORK/app.out" && worker_freed; then
    ok "client library, lz4 over 3 lanes: the two-thread lane copies, identical; worker freed all"
else bad "client library, lz4 over 3 lanes, two threads"; fi
# A codec the worker does not offer (--codecs), and none at all: cuInit fails, saying why.
for offer in lz4 none; do
    WORKER_ARGS="--codecs $offer" start_worker
    if env GPUSHARE_REMOTE_COMPRESS=zstd GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
        "$T/remote_app" limit >"$WORK/app.out" 2>"$WORK/app.err"; then bad "zstd asked of a worker offering $offer: accepted"
    elif grep -q 'cuInit(0) = 46' "$WORK/app.err" && grep -q "GPUSHARE_REMOTE_COMPRESS=zstd: the worker does not offer it (it offers: $offer)" "$WORK/app.err" && worker_freed; then
        ok "zstd asked of a worker started with --codecs $offer: cuInit = DEVICE_UNAVAILABLE, stderr says what it offers; worker freed all"
    else bad "zstd asked of a worker offering $offer"; fi
done
# A codec whose library is missing: a liblz4.so.1 without LZ4's functions first on the library
# path (as a machine without liblz4 would fail to load it). The worker does not offer lz4 (and
# says why); the client refuses GPUSHARE_REMOTE_COMPRESS=lz4 at cuInit, saying why, nothing sent.
mkdir -p "$WORK/nolz4"
echo 'int gsr_not_lz4(void) { return 0; }' > "$WORK/nolz4/empty.c"
if ${CC:-cc} -shared -fPIC -o "$WORK/nolz4/liblz4.so.1" "$WORK/nolz4/empty.c"; then
    start_worker LD_LIBRARY_PATH="$WORK/nolz4:$B/fake/asan:$B/asan"
    if env GPUSHARE_REMOTE_COMPRESS=lz4 GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
        "$T/remote_app" limit >"$WORK/app.out" 2>"$WORK/app.err"; then bad "lz4 asked of a worker without liblz4: accepted"
    elif grep -q 'cuInit(0) = 46' "$WORK/app.err" && grep -q 'GPUSHARE_REMOTE_COMPRESS=lz4: the worker does not offer it (it offers: zstd)' "$WORK/app.err" &&
        worker_freed && grep -q 'lz4 compression not offered: liblz4.so.1 lacks LZ4_compress_default' "$WORK/worker.err"; then
        ok "a worker without a usable liblz4.so.1: says so at start, offers zstd only; lz4 asked: cuInit = DEVICE_UNAVAILABLE, stderr says what it offers"
    else bad "lz4 asked of a worker without liblz4"; fi
    if env GPUSHARE_REMOTE_COMPRESS=lz4 GPUSHARE_REMOTE="127.0.0.1:1" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$WORK/nolz4:$R/asan" ASAN_OPTIONS=detect_leaks=0 \
        "$T/remote_app" limit >"$WORK/app.out" 2>"$WORK/app.err"; then bad "lz4 asked by a client without liblz4: accepted"
    elif grep -q 'cuInit(0) = 100' "$WORK/app.err" && grep -q 'GPUSHARE_REMOTE_COMPRESS=lz4, but lz4 cannot be used here: liblz4.so.1 lacks LZ4_compress_default' "$WORK/app.err"; then
        ok "a client without a usable liblz4.so.1 asking lz4: refused at cuInit (NO_DEVICE), saying why, nothing sent"
    else bad "lz4 asked by a client without liblz4"; fi
else bad "cannot build the stand-in liblz4.so.1"; fi
# Bad values: refused at cuInit with the reason, nothing sent (port 1: nothing listens there).
for value in gzip zstd:0 zstd:20 lz4:1 ZSTD "zstd:"; do
    if env GPUSHARE_REMOTE_COMPRESS="$value" GPUSHARE_REMOTE="127.0.0.1:1" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
        "$T/remote_app" limit >"$WORK/app.out" 2>"$WORK/app.err"; then bad "GPUSHARE_REMOTE_COMPRESS=$value accepted"
    elif grep -q 'cuInit(0) = 100' "$WORK/app.err" && grep -q "GPUSHARE_REMOTE_COMPRESS must be off, lz4, zstd or zstd:LEVEL (1 to 19), not \"$value\"" "$WORK/app.err"; then :
    else bad "GPUSHARE_REMOTE_COMPRESS=$value"; fi
done
ok "GPUSHARE_REMOTE_COMPRESS=gzip, zstd:0, zstd:20, lz4:1, ZSTD, zstd: each refused at cuInit (NO_DEVICE), saying what is allowed"
if env LD_LIBRARY_PATH="$B/fake/asan:$B/asan" "$R/asan/gpushare-remote-worker" --codecs gzip >"$WORK/w.out" 2>"$WORK/w.err"; then bad "--codecs gzip accepted"
elif [ $? = 2 ] && grep -q -- '--codecs takes none' "$WORK/w.err"; then ok "worker --codecs gzip: usage error (exit 2)"
else bad "worker --codecs gzip"; fi

# 7. TLS (docs/remote.md "TLS"): the worker's own certificate, pinned by the client.
# A driver-API program end to end over TLS 1.3, through the pin in the listening line.
TLS=1 start_worker
if [ -z "$FP" ]; then bad "TLS worker: no tls-sha256 pin in its listening line ($(cat "$WORK/worker.out"))"
elif GPUSHARE_REMOTE_TLS_SHA256="$FP" app full >"$WORK/app.out" 2>"$WORK/app.err" && grep -q '^remote_app full ok' "$WORK/app.out" &&
    worker_freed; then
    ok "driver-API program over TLS 1.3, the worker's certificate pinned: results, bounds, deferred errors; worker freed all ($(grep batched "$WORK/app.out" | sed 's/remote_app: //'))"
else bad "driver-API program over TLS"; fi

# The pin in upper case with colons (Node's fingerprint256) is the same pin; the raw client's
# bad frames over TLS get the same answers as in plaintext.
TLS=1 start_worker
UPPER=$(printf '%s' "$FP" | tr 'a-f' 'A-F' | sed 's/\(..\)/\1:/g; s/:$//')
if GSR_RAW_TLS_SHA256="$UPPER" "$T/remote_raw" badpayload "127.0.0.1:$PORT" "$KEY" >"$WORK/raw.out" 2>"$WORK/raw.err" && worker_exit 10; then
    ok "bad payload and forged handles over TLS (pin as AB:CD:...): errors, the session lives; a stray DATA frame drops it (worker exit 0)"
else bad "bad frames over TLS"; fi

# A wrong pin: the client refuses the worker before sending anything (the key stays here), says
# why, and cuInit fails; the worker sees no HELLO and ends (exit 5).
TLS=1 start_worker
WRONG=$(printf '%s' "$FP" | sed 's/^./0/; t; s/^/0/')
[ "$WRONG" = "$FP" ] && WRONG=$(printf '%s' "$FP" | sed 's/^./1/')
GPUSHARE_REMOTE_TLS_SHA256="$WRONG" app limit >"$WORK/app.out" 2>"$WORK/app.err"; app_rc=$?
worker_exit 10; got=$?
if [ $app_rc -ne 0 ] && grep -q "certificate is not the pinned one" "$WORK/app.err" && grep -q 'cuInit(0) = 46' "$WORK/app.err" && [ "$got" = 5 ]; then
    ok "a wrong pin: refused before any frame (\"$(sed -n 's/^gpushare remote: //p' "$WORK/app.err" | head -1)\"), cuInit = DEVICE_UNAVAILABLE, worker exit $got"
else bad "wrong pin: app rc $app_rc, worker exit $got"; fi

# TLS asked, plaintext worker: an error, never a plaintext retry (the key is not sent). Any
# 64 hex digits do as the pin: the handshake fails before it is compared.
start_worker
GPUSHARE_REMOTE_TLS_SHA256="$KEY" app limit >"$WORK/app.out" 2>"$WORK/app.err"; app_rc=$?
worker_exit 10; got=$?
if [ $app_rc -ne 0 ] && grep -q "is it a TLS session" "$WORK/app.err" && [ "$got" = 5 ] && grep -q 'failed the handshake' "$WORK/worker.err"; then
    ok "TLS asked of a plaintext worker: the handshake fails, no plaintext fallback (worker exit $got)"
else bad "no plaintext fallback: app rc $app_rc, worker exit $got"; fi

TLS=1 raw_case midhtod 0 "over TLS: client gone halfway through a host-to-device copy"
TLS=1 raw_case copies 0 "over TLS, version 2: 24 MiB + 12345 bytes both ways in 4 MiB frames, identical" 2
TLS=1 raw_case middtoh 0 "over TLS, version 2: client gone while the worker's ring sends" 2
TLS=1 lane_case lanes 0 "bulk lanes over TLS: 3 lanes, each its own TLS session pinned to the worker's certificate; the same copies, identical" '3 bulk lanes open'
TLS=1 lane_case lanebadkey 5 "over TLS: a lane with a wrong key refused, the session ends" 'lane 1 refused: wrong key'
TLS=1 lane_case lanedrop 0 "over TLS: a lane closed halfway through a striped copy, the session ends" 'a bulk lane failed'
TLS=1 lane_case lanedropdtoh 0 "over TLS: a lane closed while the worker sends a striped copy, the session ends" 'a bulk lane failed'
TLS=1 start_worker
if env GPUSHARE_REMOTE_TLS_SHA256="$FP" GPUSHARE_REMOTE_LANES=3 GPUSHARE_REMOTE_LOG=1 GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$R/asan" ASAN_OPTIONS=detect_leaks=0 \
    "$T/remote_app" lanes >"$WORK/app.out" 2>"$WORK/app.err" && grep -q '^remote_app lanes ok' "$WORK/app.out" && grep -q '3 bulk lanes open' "$WORK/app.err" && worker_freed; then
    ok "client library over TLS with 3 lanes: two threads on two streams, identical; worker freed all"
else bad "client library over TLS with lanes"; fi
TLS=1 IDLE_MS=1000 raw_case stall 0 "over TLS: a frame stalled halfway, dropped at the idle timeout (1 s)"

# Bad handshakes never crash a --tls worker (ASan+UBSan): a plaintext HELLO with the right key,
# garbage, a client that connects and says nothing; each ends it with exit 5.
tls_bad() {
    mode=$1; what=$2
    TLS=1 ACCEPT_MS=1000 start_worker
    "$T/remote_raw" "$mode" "127.0.0.1:$PORT" "$KEY" >"$WORK/raw.out" 2>"$WORK/raw.err"
    worker_exit 10; got=$?
    if [ "$got" = 5 ] && grep -q 'TLS' "$WORK/worker.err" && ! grep -q 'ERROR: \(Address\|Undefined\)Sanitizer\|runtime error' "$WORK/worker.err"; then
        ok "$what: worker exit 5 (\"$(sed -n 's/^gpushare-remote-worker: TLS: //p' "$WORK/worker.err" | head -1)\")"
    else bad "$what: worker exit $got"; fi
}
tls_bad badkey "a plaintext HELLO to a TLS worker"
tls_bad garbage "garbage to a TLS worker"
tls_bad nohello "a client gone before its TLS handshake"
tls_bad silent "a client silent in the TLS handshake (accept timeout 1 s)"

if [ $fail -eq 0 ]; then
    echo "remote-test: PASS ($pass cases)"
else
    echo "remote-test: FAIL ($fail of $((pass + fail)) cases)"
    exit 1
fi
