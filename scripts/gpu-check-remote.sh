#!/usr/bin/env bash
# Real-GPU check of remote GPUs (issue 23, docs/remote.md): client and worker on this machine
# over loopback TCP. One driver-API program (scripts/gpu/remote_check.c: a real PTX kernel
# launched with kernelParams, then the CUDA runtime's path to it (cuGetProcAddress,
# cuLibraryLoadData, a kernel handle), round trips, launches/s, 1 GiB copies) run natively
# and through the client libcuda.so.1 against gpushare-remote-worker on the real driver; CuPy
# (an elementwise kernel and a matmul, results compared bit for bit) and a PyTorch training
# loop (10 deterministic steps, losses compared exactly, step time vs native), each natively
# and remotely; an nvcc-built CUDA runtime-API program (static runtime) natively and remotely;
# the session's memory limit (libgpushare in the worker); a client SIGKILLed
# while holding 4 GiB: the worker's memory gone from nvidia-smi; what loopback TCP carries over
# one connection and several (scripts/gpu/tcp_blast.c). Every case prints PASS, FAIL
# or SKIP; a failing remote case names the first call the client did not serve (its
# GPUSHARE_REMOTE_LOG=1 lines, kept in $OUT/*-remote.err, every unserved cuGetProcAddress
# name in $OUT/unserved-*.txt; CuPy and PyTorch run with GPUSHARE_REMOTE_LOG=2, a trace whose
# end is in $OUT/*-trace-tail.txt, and say the stage that failed). No Node.js and no CUDA toolkit: the native files come in the
# device call's carry (build/native/gpushare-remote-worker, build/native/remote,
# build/native/libgpushare.so), or are built here with make and gcc when missing; the test
# program is built here with gcc against our own declarations. 1 GiB copies alone over bulk lanes
# (GPUSHARE_REMOTE_LANES 0, 4, 8, 12, 16; unset: 16) against native pinned, and 1 GiB of zeros over 8 lanes
# raw and with GPUSHARE_REMOTE_COMPRESS=lz4. Prints a table; JSON lines go
# to $OUT/results.jsonl. About 4 minutes; at most about 10: every client run and every wait is
# bounded (a case that overruns prints FAIL and the check goes on).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-check-remote}
mkdir -p "$OUT"
WORK=$(mktemp -d)
results=$OUT/results.jsonl
: > "$results"
B=$PWD/build/native
if [ ! -x "$B/gpushare-remote-worker" ] || [ ! -f "$B/remote/libcuda.so.1" ] || [ ! -f "$B/remote/libnvidia-ml.so.1" ] || [ ! -f "$B/libgpushare.so" ]; then
    make -s -C native remote shim >/dev/null || { echo "native build failed (carry build/native/gpushare-remote-worker, build/native/remote, build/native/libgpushare.so)"; exit 1; }
fi
cudalib=$(ldconfig -p | awk '/libcuda.so.1 /{print $NF; exit}')
mkdir -p build/gpu
gcc -O2 -std=c11 -Inative/include scripts/gpu/remote_check.c -o build/gpu/remote_check "$cudalib" || { echo "remote_check: build failed"; exit 1; }
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
# PARTS="1 1b" runs only those sections (numbered below; default all): a short device call.
want() { case " ${PARTS:-all} " in *" all "* | *" $1 "*) return 0 ;; esac; return 1; }

# start_worker [VAR=VALUE ...]: a worker on the real driver, on a free loopback port.
start_worker() {
    # The last worker's line must not be read as this one's: the redirection below happens in
    # the background job, possibly after the loop's first read.
    rm -f "$WORK/worker.out"
    env GPUSHARE_REMOTE_KEY="$KEY" "$@" "$B/gpushare-remote-worker" --listen 127.0.0.1:0 >"$WORK/worker.out" 2>>"$OUT/worker.err" &
    WPID=$!
    for _ in $(seq 200); do
        PORT=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\)$/\1/p' "$WORK/worker.out" 2>/dev/null)
        [ -n "$PORT" ] && return 0
        sleep 0.05
    done
    echo "worker did not start"; return 1
}
# remote_exec CMD...: CMD as a client of the worker, in place of the calling shell; so
# `remote_exec CMD &` makes $! the client itself (a function sent to the background runs in a
# subshell, and a kill -9 of that subshell leaves its child running: the session-21 hang).
remote_exec() { exec env LD_LIBRARY_PATH="$B/remote${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" GPUSHARE_REMOTE="127.0.0.1:$PORT" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_LOG=1 "$@"; }
remote() { (remote_exec "$@"); }
# wait_bounded PID SECONDS WHAT: PID's exit status once it ended; still running after SECONDS,
# it is killed, "FAIL WHAT" is said and the status is 124. No wait in this script is unbounded.
wait_bounded() {
    local i=0
    while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 20)) ]; do sleep 0.05; i=$((i + 1)); done
    if kill -0 "$1" 2>/dev/null; then
        echo "FAIL $3: still running after $2 s, killed"
        kill -9 "$1" 2>/dev/null; wait "$1" 2>/dev/null
        return 124
    fi
    wait "$1"
}

# 1. The same program natively and remotely (twice each, interleaved).
want 1 && for round in 1 2; do
    build/gpu/remote_check native >> "$results" 2>>"$OUT/native.err"
    start_worker && remote timeout 120 build/gpu/remote_check remote >> "$results" 2>>"$OUT/remote.err"
    wait_bounded "$WPID" 30 "worker after remote_check (round $round)"
done

# 1a. Copies over bulk lanes (docs/remote.md "Bulk lanes"): 1 GiB each way natively (pinned) and
# remotely with GPUSHARE_REMOTE_LANES 0 (one connection), 4, 8, 12 and 16, interleaved, twice; the
# table gives each as % of native pinned (budget 50%) beside tcp_blast's ceiling for as many
# connections (section 4).
want 1a && for round in 1 2; do
    build/gpu/remote_check copies-native copies >> "$results" 2>>"$OUT/native.err"
    for lanes in 0 4 8 12 16; do
        start_worker && GPUSHARE_REMOTE_LANES=$lanes remote timeout 120 build/gpu/remote_check "copies-lanes-$lanes" copies >> "$results" 2>>"$OUT/remote.err"
        wait_bounded "$WPID" 30 "worker after the copies over $lanes lanes (round $round)"
    done
    # Compression (docs/remote.md "Compression"): 1 GiB of zeros over 8 lanes, raw and lz4.
    build/gpu/remote_check copies-native-zeros copies-zeros >> "$results" 2>>"$OUT/native.err"
    for codec in off lz4; do
        start_worker && GPUSHARE_REMOTE_LANES=8 GPUSHARE_REMOTE_COMPRESS=$codec remote timeout 120 build/gpu/remote_check "copies-zeros-$codec" copies-zeros >> "$results" 2>>"$OUT/remote.err"
        wait_bounded "$WPID" 30 "worker after the zeros copies, compression $codec (round $round)"
    done
done

# 1b. CuPy and PyTorch, natively then remotely (GPUSHARE_REMOTE_LOG=1: the calls not served).
want 1b && for case in cupy torch; do
    timeout 90 env CUBLAS_WORKSPACE_CONFIG=:4096:8 python3 "scripts/gpu/remote_$case.py" native > "$WORK/$case.out" 2>"$OUT/$case-native.err"
    rc=$?
    grep '^{' "$WORK/$case.out" >> "$results" || echo "{\"case\":\"$case\",\"mode\":\"native\",\"error\":\"exit $rc, no result line\"}" >> "$results"
    grep -q '"skip"' "$WORK/$case.out" && continue
    start_worker || continue
    # GPUSHARE_REMOTE_LOG=2: every entry point and export table asked, every slot called and
    # every call the worker refused, in order; the table names the first refusal.
    # GPUSHARE_REMOTE_DUMP: a refused module image's bytes, loaded below on the real driver.
    mkdir -p "$WORK/dump-$case"
    # LD_DEBUG=symbols,bindings: every name a library looked up in the process (dlsym
    # included), kept only for driver names; one looked up and never bound is a dlsym the
    # client library does not answer (the trace above cannot see those).
    # CuPy only: PyTorch's libraries make the log gigabytes.
    rm -rf "$WORK/ld-$case"; mkdir -p "$WORK/ld-$case"
    lddebug=(); [ "$case" = cupy ] && lddebug=(LD_DEBUG=symbols,bindings LD_DEBUG_OUTPUT="$WORK/ld-$case/ld")
    remote timeout 90 env "${lddebug[@]}" CUBLAS_WORKSPACE_CONFIG=:4096:8 CUBLAS_LOGINFO_DBG=1 CUBLAS_LOGDEST_DBG="$OUT/$case-cublas.log" CUBLASLT_LOG_LEVEL=5 CUBLASLT_LOG_FILE="$OUT/$case-cublaslt.log" GPUSHARE_REMOTE_LOG=2 GPUSHARE_REMOTE_DUMP="$WORK/dump-$case" python3 "scripts/gpu/remote_$case.py" remote > "$WORK/$case.out" 2>"$OUT/$case-remote.err"
    rc=$?
    grep '^{' "$WORK/$case.out" >> "$results" || echo "{\"case\":\"$case\",\"mode\":\"remote\",\"error\":\"exit $rc, no result line\"}" >> "$results"
    sed -n 's/^gpushare remote: cuGetProcAddress("\([^"]*\)").*/\1/p' "$OUT/$case-remote.err" > "$OUT/unserved-$case.txt"
    cat "$WORK/ld-$case"/ld.* 2>/dev/null | sed -n "s/.*symbol=\(cu[A-Z][A-Za-z0-9_]*\);  lookup in file=\(.*\) \[.*/\1 \2/p" | sort -u > "$WORK/ld-$case/lookups"
    cat "$WORK/ld-$case"/ld.* 2>/dev/null | sed -n "s/.*normal symbol \`\(cu[A-Z][A-Za-z0-9_]*\)'.*/\1/p" | sort -u > "$WORK/ld-$case/bound"
    awk '{print $1}' "$WORK/ld-$case/lookups" | sort -u | comm -23 - "$WORK/ld-$case/bound" > "$OUT/$case-dlsym-unbound.txt"
    grep -F -f <(sed 's/$/ /' "$OUT/$case-dlsym-unbound.txt") "$WORK/ld-$case/lookups" | head -n 400 > "$OUT/$case-dlsym-unbound-where.txt"
    # Which libraries dlopen'ed what, and the driver names cuBLAS and cuBLASLt carry as text.
    cat "$WORK/ld-$case"/ld.* 2>/dev/null | grep -E 'calling init|file=.*libcublas' | sort -u | head -n 200 > "$OUT/$case-ld-libs.txt"
    for lib in $(grep -o '/[^ ]*libcublas[A-Za-z]*\.so[.0-9]*' "$OUT/$case-ld-libs.txt" | sort -u); do
        strings -n 5 "$lib" | grep -E '^cu[A-Z][A-Za-z0-9_]+$' | sort -u > "$OUT/$case-names-$(basename "$lib").txt"
    done
    nm -D --defined-only "$B/remote/libcuda.so.1" | awk '{print $NF}' | sort -u > "$OUT/client-exports.txt"
    # The last of the trace (less the entry point asks), where a failure's cause shows.
    grep -v 'gpushare remote: ask cuGetProcAddress' "$OUT/$case-remote.err" | tail -n 60 > "$OUT/$case-trace-tail.txt"
    # A module image the worker's driver refused, described by the client (its fatbin entries
    # and what lies past its end): printed with the table.
    grep 'gpushare remote: module image refused' "$OUT/$case-remote.err" | head -n 3 > "$OUT/$case-refused-images.txt"
    # Each dumped image loaded here natively, as sent and with what followed it in the client:
    # which of the two the driver takes says whether the client cut the image short.
    timeout 60 python3 scripts/gpu/load_image.py "$WORK/dump-$case" >> "$OUT/$case-refused-images.txt" 2>&1
    ls "$WORK/dump-$case"/*.bin >/dev/null 2>&1 && tar -C "$WORK/dump-$case" -czf "$OUT/$case-refused-images.tgz" --exclude='*.past' .
    wait_bounded "$WPID" 30 "worker after $case"
done

# 1c. An unmodified CUDA runtime-API program (native/remote/tests/cudart_app.cu, nvcc -cudart
# static: the runtime inside, reaching the driver through cuGetProcAddress and the export
# tables), natively then remotely; built where nvcc is (make -C native remote-cudart-app) and
# carried in build/native/remote/tests.
APP=$B/remote/tests/cudart_app_static
want 1c && for mode in native remote; do
    if [ ! -x "$APP" ]; then echo "{\"case\":\"cudart\",\"mode\":\"$mode\",\"skip\":\"no $APP (make -C native remote-cudart-app where nvcc is, then carry build/native/remote)\"}" >> "$results"; continue; fi
    if [ "$mode" = native ]; then timeout 60 "$APP" gpu > "$WORK/cudart.out" 2>"$OUT/cudart-native.err"
    else start_worker || continue; remote timeout 60 "$APP" gpu > "$WORK/cudart.out" 2>"$OUT/cudart-remote.err"; wait_bounded "$WPID" 30 "worker after cudart_app"; fi
    line=$(grep -m1 '^cudart_app' "$WORK/cudart.out" | tr -d '"\\')
    if grep -q '^cudart_app ok' "$WORK/cudart.out"; then echo "{\"case\":\"cudart\",\"mode\":\"$mode\",\"line\":\"$line\"}" >> "$results"
    else echo "{\"case\":\"cudart\",\"mode\":\"$mode\",\"error\":\"${line:-no output}\"}" >> "$results"; fi
done

# 2. The session's memory limit: libgpushare in the worker, 2 GiB.
if want 2; then
    start_worker LD_PRELOAD="$B/libgpushare.so" GPUSHARE_MEMORY_LIMIT=2Gi && remote timeout 120 build/gpu/remote_check remote-limit fill >> "$results" 2>>"$OUT/remote.err"
    wait_bounded "$WPID" 30 "worker after the memory-limit run"
fi

# 3. A client killed holding 4 GiB: how long until the worker's memory is gone. The client
# is started with remote_exec so that $APID is the program itself, and is checked to be gone.
used_before="" gone="" wcode=124 held=0
if want 3 && start_worker; then
    remote_exec build/gpu/remote_check remote-hold hold > "$WORK/hold.out" 2>>"$OUT/remote.err" &
    APID=$!
    for _ in $(seq 400); do grep -q holding "$WORK/hold.out" && { held=1; break; }; kill -0 "$APID" 2>/dev/null || break; sleep 0.05; done
    used_before=$(timeout 10 nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits | awk -F', ' -v p="$WPID" '$1==p{print $2}')
    kill -9 "$APID" 2>/dev/null
    wait_bounded "$APID" 5 "the killed remote-hold client" >/dev/null
    t0=$(date +%s.%N)
    # Bounded by the clock, not a count: one nvidia-smi can take a second on a busy machine.
    while awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { exit !(a - b < 10) }'; do
        if ! timeout 10 nvidia-smi --query-compute-apps=pid --format=csv,noheader | grep -qx "$WPID"; then gone=$(awk -v a="$(date +%s.%N)" -v b="$t0" 'BEGIN { printf "%.2f", a - b }'); break; fi
        sleep 0.05
    done
    wait_bounded "$WPID" 20 "the worker after its client was killed"; wcode=$?
fi
want 3 && echo "{\"mode\":\"kill-client\",\"held\":$held,\"worker_mib_before\":\"${used_before:-?}\",\"freed_after_s\":\"${gone:-not within 10 s}\",\"worker_exit\":$wcode}" >> "$results"

# 4. What loopback TCP carries here (scripts/gpu/tcp_blast.c): the ceiling of a copy over one
# connection, and over several (whether bulk lanes would pay, docs/remote.md "Copies"). The last
# word of a configuration is the span: 0, one 4 MiB buffer per thread (cached); 1, every byte
# out of and into 4 GiB buffers of 4 KiB pages, as a copy of ordinary memory; 2, the same on
# transparent huge pages, as the client's page-locked memory and the worker's staging rings are.
if want 4 && gcc -O2 -std=c11 -pthread scripts/gpu/tcp_blast.c -o build/gpu/tcp_blast; then
    for cfg in "1024 0 0 1 0" "4096 0 0 1 0" "4096 0 1 1 0" "4096 16384 0 1 0" "4096 0 0 2 0" "4096 0 0 4 0" "4096 0 0 8 0" "4096 0 0 12 0" "4096 0 0 16 0" \
        "4096 0 0 8 1" "4096 0 0 8 2" "4096 0 0 16 1" "4096 0 0 16 2"; do
        # shellcheck disable=SC2086 # the configuration's words are the arguments
        timeout 60 build/gpu/tcp_blast 4096 $cfg >> "$results" 2>>"$OUT/tcp.err" || echo "{\"mode\":\"tcp\",\"error\":\"tcp_blast $cfg failed\"}" >> "$results"
    done
fi

python3 - "$results" "$OUT" <<'PY' | tee "$OUT/table.txt"
import json, os, re, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip().startswith('{')]
out_dir = sys.argv[2]
def runs(mode): return [r for r in rows if r.get('mode') == mode and 'error' not in r and 'case' not in r]
for r in rows:
    if 'error' in r: print('ERROR', r)
nat, rem = runs('native'), runs('remote')
def med(rs, k): return statistics.median(r[k] for r in rs) if rs else float('nan')
print(f"{'check':44} {'native':>12} {'remote':>12}  verdict")
same = bool(nat and rem) and all(r['results_ok'] for r in nat + rem) and len({r['checksum'] for r in nat + rem}) == 1
print(f"{'kernel results (64 MiB, 3 launches)':44} {'ok' if nat and all(r['results_ok'] for r in nat) else 'BAD':>12} {'ok' if rem and all(r['results_ok'] for r in rem) else 'BAD':>12}  {'bit-identical' if same else 'DIFFER'}")
rt = med(rem, 'rt_us_median')
print(f"{'small call round trip, median us':44} {med(nat, 'rt_us_median'):12.2f} {rt:12.2f}  {'<= 50 us' if rt <= 50 else 'OVER 50 us'}")
lps = med(rem, 'launches_per_s')
print(f"{'launches per second':44} {med(nat, 'launches_per_s'):12.0f} {lps:12.0f}  {'>= 100k' if lps >= 1e5 else 'UNDER 100k'}")
for k, label in (('htod_gb_s', 'host to device 1 GiB, GB/s'), ('dtoh_gb_s', 'device to host 1 GiB, GB/s')):
    n, r = med(nat, k), med(rem, k)
    print(f"{label:44} {n:12.2f} {r:12.2f}  {r / n * 100:.0f}% of native {'pinned' if nat and nat[0]['pinned'] else 'pageable'} (budget 50%)")
# Copies alone over bulk lanes (section 1a): each lane count against native pinned, side by side.
cn = [r for r in rows if r.get('mode') == 'copies-native' and 'error' not in r]
for k, label in (('htod_gb_s', 'host to device'), ('dtoh_gb_s', 'device to host')):
    n = med(cn, k)
    for lanes in (0, 4, 8, 12, 16):
        cr = [r for r in rows if r.get('mode') == f'copies-lanes-{lanes}' and 'error' not in r]
        v = med(cr, k)
        ok = bool(cr) and all(r['data_ok'] for r in cr)
        conns = '1 connection' if lanes == 0 else f'{lanes} lanes'
        print(f"{'1 GiB ' + label + ', ' + conns + ', GB/s':44} {n:12.2f} {v:12.2f}  {v / n * 100:.0f}% of native pinned (budget 50%){'' if ok else ', DATA BAD or missing'}")
# Compression (section 1a): 1 GiB of zeros over 8 lanes, raw and lz4, against native pinned zeros.
cz = [r for r in rows if r.get('mode') == 'copies-native-zeros' and 'error' not in r]
for k, label in (('htod_gb_s', 'host to device'), ('dtoh_gb_s', 'device to host')):
    n = med(cz, k)
    for codec in ('off', 'lz4'):
        cr = [r for r in rows if r.get('mode') == f'copies-zeros-{codec}' and 'error' not in r]
        v = med(cr, k)
        ok = bool(cr) and all(r['data_ok'] for r in cr)
        print(f"{'1 GiB zeros ' + label + ', 8 lanes, ' + ('raw' if codec == 'off' else codec) + ', GB/s':44} {n:12.2f} {v:12.2f}  {v / n * 100 if n else 0:.0f}% of native pinned{'' if ok else ', DATA BAD or missing'}")
rp = bool(nat and rem) and all(r.get('runtime_path_ok') for r in nat + rem)
attrs = {(r.get('max_threads'), r.get('occupancy_256')) for r in nat + rem}
print(f"{'runtime path: library, kernel handle, attrs':44} {'ok' if nat and all(r.get('runtime_path_ok') for r in nat) else 'BAD':>12} {'ok' if rem and all(r.get('runtime_path_ok') for r in rem) else 'BAD':>12}  {'PASS' if rp and len(attrs) == 1 else 'FAIL'} (max threads, occupancy at 256: {sorted(attrs)})")

def first_unsupported(case):
    """The first call the client did not serve (a stub called, an export table refused, a link loss)."""
    try:
        lines = open(os.path.join(out_dir, f'{case}-remote.err'), errors='replace').read().splitlines()
    except OSError:
        return 'no log'
    for l in lines:
        # Served tables, the one table the runtime goes on without, GPUSHARE_REMOTE_LOG=2's trace
        # of asks and of slots that succeeded are not refusals.
        if refusal(l):
            return l[len('gpushare remote: '):]
    return 'none logged'

def refusal(l):
    """A log line saying the client or the worker refused something: not an entry point asked, a
    table served, the table the runtime goes on without, a call or slot that succeeded, nor a
    context-local-storage miss (the runtime's way to ask whether it set a key yet)."""
    return l.startswith('gpushare remote: ') and 'cuGetProcAddress(' not in l and '): served (' not in l \
        and 'cuGetExportTable(f8cff95121468b4eb9e2fb469e7c0dd9)' not in l and not l.endswith(' -> 0') \
        and 'CONTEXT_LOCAL_STORAGE slot 2 called -> ' not in l

def refusals(case):
    """Every kind of refusal in the trace (GPUSHARE_REMOTE_LOG=2), in order, with its count."""
    try:
        lines = open(os.path.join(out_dir, f'{case}-remote.err'), errors='replace').read().splitlines()
    except OSError:
        return 'no log'
    seen = {}
    for l in lines:
        if refusal(l):
            k = l[len('gpushare remote: '):]
            seen[k] = seen.get(k, 0) + 1
    return '; '.join(f'{k} (x{n})' for k, n in list(seen.items())[:8]) or 'none'

def export_tables(case):
    try:
        text = open(os.path.join(out_dir, f'{case}-remote.err'), errors='replace').read()
    except OSError:
        return []
    return list(dict.fromkeys(re.findall(r'cuGetExportTable\(([0-9a-f]{32})\)', text)))  # in order, once each

def unserved(case):
    try:
        return len(open(os.path.join(out_dir, f'unserved-{case}.txt')).read().split())
    except OSError:
        return 0

cases = {(r.get('case'), r.get('mode')): r for r in rows if r.get('case')}
n, r = cases.get(('cudart', 'native')), cases.get(('cudart', 'remote'))
label = 'runtime-API program (nvcc -cudart static)'
if n and 'skip' in n:
    print(f"{label:44} {'skip':>12} {'skip':>12}  SKIP ({n['skip']})")
elif n and r and 'line' in n and 'line' in r:
    print(f"{label:44} {'ok':>12} {'ok':>12}  PASS (kernel results checked both ways)")
else:
    print(f"{label:44} {'ok' if n and 'line' in n else 'BAD':>12} {'ok' if r and 'line' in r else 'BAD':>12}  FAIL: native {n and n.get('error')}; remote {r and r.get('error')}; first unsupported: {first_unsupported('cudart')}")
for case, label in (('cupy', 'CuPy elementwise + matmul (bit-identical)'), ('torch', 'PyTorch 10 training steps (losses exact)')):
    n, r = cases.get((case, 'native')), cases.get((case, 'remote'))
    if n and 'skip' in n:
        print(f"{label:44} {'skip':>12} {'skip':>12}  SKIP ({n['skip']})")
        continue
    if not n or 'error' in n:
        print(f"{label:44} {'BAD':>12} {'':>12}  FAIL natively: {n and n.get('error')}")
        continue
    if not r or 'error' in r:
        print(f"{label:44} {'ok':>12} {'BAD':>12}  FAIL: {r and r.get('error')}; first unsupported: {first_unsupported(case)}; {unserved(case)} names not served (unserved-{case}.txt); export tables asked: {', '.join(export_tables(case)) or 'none'}; refusals in the trace: {refusals(case)}; last calls: {case}-trace-tail.txt")
        for line in (open(os.path.join(out_dir, f"{case}-refused-images.txt")).read().splitlines() if os.path.exists(os.path.join(out_dir, f"{case}-refused-images.txt")) else []):
            print(f"{'':44} {'':>12} {'':>12}  {line.replace('gpushare remote: ', '')[:600]}")
        continue
    if case == 'cupy':
        same = n['sha256'] == r['sha256'] and n['elementwise_matches_numpy'] and r['elementwise_matches_numpy']
        print(f"{label:44} {n['seconds']:11.3f}s {r['seconds']:11.3f}s  {'PASS' if same else 'FAIL (results differ)'}")
    else:
        same = n['losses'] == r['losses']
        ratio = r['step_ms_median'] / n['step_ms_median']
        print(f"{label:44} {n['step_ms_median']:10.2f}ms {r['step_ms_median']:10.2f}ms  {'PASS' if same else 'FAIL (losses differ)'}, step {ratio:.2f}x native {'(<= 1.2x)' if ratio <= 1.2 else '(OVER 1.2x)'}")
for r in runs('remote-limit'):
    ok = r['fill_rc'] == 2 and r['fill_bytes'] <= 2 << 30 and r['total'] == 2 << 30
    print(f"{'memory limit 2 GiB in the worker':44} {'':>12} {r['fill_bytes'] >> 20:9d} MiB  {'held (OOM, total 2 GiB)' if ok else 'NOT HELD ' + json.dumps(r)}")
for r in runs('tcp'):
    label = f"loopback TCP, {r['streams']} stream{'s' if r['streams'] > 1 else ''}, {r['write_kib'] >> 10} MiB sends"
    label += f", buf {r['buf_kib'] >> 10} MiB" if r['buf_kib'] else ''
    label += ', zerocopy' if r['zerocopy'] else ''
    label += {1: ', 4 KiB pages', 2: ', huge pages'}.get(r.get('span', 0), '')
    print(f"{label:44} {'':>12} {r['gb_s']:12.2f}  GB/s (the copy ceiling of that many connections)")
for r in runs('kill-client'):
    ok = r.get('held') == 1 and r['worker_exit'] == 0 and not r['freed_after_s'].startswith('not')
    print(f"{'client SIGKILLed holding 4 GiB':44} {'':>12} {r['worker_mib_before']:>8} MiB  {'PASS' if ok else 'FAIL'}: {'not freed within 10 s' if r['freed_after_s'].startswith('not') else 'freed after ' + r['freed_after_s'] + ' s'}, worker exit {r['worker_exit']}{'' if r.get('held') == 1 else ', the client never said holding'}")
PY
rm -rf "$WORK"
