#!/bin/sh
# bench_tls.sh BUILD_NATIVE_DIR [ROUNDS] [BASE_BUILD_NATIVE_DIR]: the data path's cost over
# loopback on the fake driver, plaintext and TLS side by side (and another build's plaintext,
# e.g. base/session20's, when given), and the same program natively on the fake (no client,
# no worker: the copy bandwidth the remote one is compared with), interleaved round by round,
# medians of the rounds. Each round runs remote_app bench once per variant: a small
# synchronous call's round trip (median of 20,000), launches per second (100,000 sent without
# reply), 256 MiB copies each way. Release worker and client (the ones that ship); the fake
# driver copies with memcpy.
set -u
B=$1
ROUNDS=${2:-5}
BASE=${3:-}
WORK="$B/remote/bench-work"
rm -rf "$WORK"
mkdir -p "$WORK"
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
APP="$B/remote/tests/remote_app"

# one VARIANT BUILD TLS: one bench run; appends "VARIANT rt launches htod dtoh" to results.
one() {
    variant=$1; build=$2; tls=$3
    env GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$build/fake" "$build/gpushare-remote-worker" --listen 127.0.0.1:0 \
        ${tls:+--tls} >"$WORK/worker.out" 2>"$WORK/worker.err" &
    wpid=$!
    port=""
    i=0
    while [ -z "$port" ] && [ $i -lt 200 ]; do
        sleep 0.05; i=$((i + 1))
        port=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\).*$/\1/p' "$WORK/worker.out")
    done
    fp=$(sed -n 's/^.* tls-sha256 \([0-9a-f]*\)$/\1/p' "$WORK/worker.out")
    env GPUSHARE_REMOTE="127.0.0.1:$port" GPUSHARE_REMOTE_KEY="$KEY" ${fp:+GPUSHARE_REMOTE_TLS_SHA256=$fp} \
        LD_LIBRARY_PATH="$build/remote" ASAN_OPTIONS=detect_leaks=0 "$APP" bench >"$WORK/app.out" 2>&1
    wait "$wpid"
    rt=$(sed -n 's/^bench round_trip_us median \([0-9.]*\) .*/\1/p' "$WORK/app.out")
    lps=$(sed -n 's/^bench launches_per_s \([0-9]*\)/\1/p' "$WORK/app.out")
    bw=$(sed -n 's/^bench htod_gb_s \([0-9.]*\) dtoh_gb_s \([0-9.]*\)/\1 \2/p' "$WORK/app.out")
    echo "$variant ${rt:-?} ${lps:-?} ${bw:-? ?}" >>"$WORK/results"
}

# native: remote_app straight on the fake driver.
native() {
    env LD_LIBRARY_PATH="$B/fake" "$APP" bench >"$WORK/app.out" 2>&1
    rt=$(sed -n 's/^bench round_trip_us median \([0-9.]*\) .*/\1/p' "$WORK/app.out")
    lps=$(sed -n 's/^bench launches_per_s \([0-9]*\)/\1/p' "$WORK/app.out")
    bw=$(sed -n 's/^bench htod_gb_s \([0-9.]*\) dtoh_gb_s \([0-9.]*\)/\1 \2/p' "$WORK/app.out")
    echo "native ${rt:-?} ${lps:-?} ${bw:-? ?}" >>"$WORK/results"
}

r=0
while [ $r -lt "$ROUNDS" ]; do
    # Alternate the order so neither variant always runs first.
    if [ $((r % 2)) -eq 0 ]; then
        native
        [ -n "$BASE" ] && one base "$BASE" ""
        one plain "$B" ""; one tls "$B" 1
    else
        one tls "$B" 1; one plain "$B" ""
        [ -n "$BASE" ] && one base "$BASE" ""
        native
    fi
    r=$((r + 1))
done

echo "variant      round_trip_us  launches/s  htod_GB/s  dtoh_GB/s   (medians of $ROUNDS rounds; load average: $(cut -d' ' -f1-3 /proc/loadavg))"
for v in native base plain tls; do
    grep -q "^$v " "$WORK/results" || continue
    printf '%-12s' "$v"
    for col in 2 3 4 5; do
        printf ' %12s' "$(awk -v v="$v" -v c="$col" '$1 == v { print $c }' "$WORK/results" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
    done
    echo
done
