#!/bin/sh
# bench_lanes.sh BASE_BUILD_NATIVE NEW_BUILD_NATIVE [ROUNDS] [LANES...]: 1 GiB copies over bulk
# lanes (docs/remote.md "Bulk lanes") on the fake driver over loopback, two builds side by side,
# beside what bare loopback TCP carries over as many connections (not GPU numbers: the fake's
# device memory is host memory and its device copies are memcpy on the worker's lane threads).
#
# Per round, interleaved: for each lane count (default 0 4 8 16), scripts/gpu/remote_check.c
# "copies" (1 GiB each way out of cuMemAllocHost memory, the best of REMOTE_CHECK_COPY_ROUNDS,
# default 2) through BASE's worker and client, then NEW's; then scripts/gpu/tcp_blast.c over
# max(lanes,1) connections, 1 GiB in 4 MiB sends, hot (one 4 MiB buffer per thread, cached), cold
# (every byte out of and into 1 GiB buffers of 4 KiB pages, as a copy of ordinary memory, after
# one untimed pass) and cold on huge pages (as the client's page-locked memory and the worker's
# rings are since session 24). Prints one line per measurement, then a table of medians: GB/s,
# and each copy as a ratio to cold TCP (4 KiB pages) over as many streams.
set -u
BASE=$1
NEW=$2
ROUNDS=${3:-3}
shift 2
[ $# -gt 0 ] && shift
LANES=${*:-0 4 8 16}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
cc -O2 -std=c11 -I"$ROOT/native/include" "$ROOT/scripts/gpu/remote_check.c" -o "$WORK/remote_check" -L"$NEW/fake" -l:libcuda.so.1 || exit 1
cc -O2 -std=c11 -pthread "$ROOT/scripts/gpu/tcp_blast.c" -o "$WORK/tcp_blast" || exit 1
: >"$WORK/lines"

# copies BUILD_DIR NAME LANES: one remote_check copies run; appends "NAME LANES htod dtoh".
copies() {
    b=$1
    env GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$b/fake" "$b/gpushare-remote-worker" --listen 127.0.0.1:0 >"$WORK/worker.out" 2>"$WORK/worker.err" &
    wpid=$!
    port=""
    i=0
    while [ -z "$port" ] && [ $i -lt 200 ]; do
        sleep 0.05
        i=$((i + 1))
        port=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\).*$/\1/p' "$WORK/worker.out")
    done
    out=$(env GPUSHARE_REMOTE="127.0.0.1:$port" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_LANES="$3" LD_LIBRARY_PATH="$b/remote" \
        REMOTE_CHECK_COPY_ROUNDS="${REMOTE_CHECK_COPY_ROUNDS:-2}" timeout 300 "$WORK/remote_check" remote copies 2>>"$WORK/client.err")
    wait "$wpid"
    h=$(echo "$out" | sed -n 's/.*"htod_gb_s":\([0-9.]*\).*/\1/p')
    d=$(echo "$out" | sed -n 's/.*"dtoh_gb_s":\([0-9.]*\).*/\1/p')
    ok=$(echo "$out" | sed -n 's/.*"data_ok":\([a-z]*\).*/\1/p')
    [ "$ok" = true ] || { echo "$2 lanes $3: copy failed: $out $(tail -n 3 "$WORK/client.err")"; return; }
    echo "$2 $3 $h $d" | tee -a "$WORK/lines"
}

tcp() {
    g=$("$WORK/tcp_blast" 1024 4096 0 0 "$1" "$2" | sed -n 's/.*"gb_s":\([0-9.]*\).*/\1/p')
    echo "tcp$2 $1 $g $g" | tee -a "$WORK/lines"
}

echo "load before: $(uptime)"
for r in $(seq "$ROUNDS"); do
    for l in $LANES; do
        copies "$BASE" base "$l"
        copies "$NEW" new "$l"
        s=$l
        [ "$s" -eq 0 ] && s=1
        tcp "$s" 0
        tcp "$s" 1
        tcp "$s" 2
    done
done
echo "load after: $(uptime)"

# Medians per (name, lanes) and ratios to cold TCP of as many streams.
echo
echo "| lanes (TCP streams) | base H2D GB/s | new H2D GB/s | base D2H GB/s | new D2H GB/s | TCP hot | TCP cold | TCP cold, huge pages | base H2D / D2H vs TCP cold | new H2D / D2H vs TCP cold |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for l in $LANES; do
    s=$l
    [ "$s" -eq 0 ] && s=1
    awk -v l="$l" -v s="$s" '
        function med(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
                                    return n == 0 ? 0 : (n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2) }
        $1 == "base" && $2 == l { bh[++nb] = $3; bd[nb] = $4 }
        $1 == "new" && $2 == l { nh[++nn] = $3; nd[nn] = $4 }
        $1 == "tcp0" && $2 == s { th[++nt] = $3 }
        $1 == "tcp1" && $2 == s { tc[++nc] = $3 }
        $1 == "tcp2" && $2 == s { tg[++ng] = $3 }
        END {
            BH = med(bh, nb); BD = med(bd, nb); NH = med(nh, nn); ND = med(nd, nn); TH = med(th, nt); TC = med(tc, nc); TG = med(tg, ng)
            printf "| %s (%s) | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f / %.2f | %.2f / %.2f |\n", l, s, BH, NH, BD, ND, TH, TC, TG,
                TC ? BH / TC : 0, TC ? BD / TC : 0, TC ? NH / TC : 0, TC ? ND / TC : 0
        }' "$WORK/lines"
done
