#!/bin/sh
# bench_compress.sh BUILD_NATIVE_DIR [MIB] [LANES]: copy compression on loopback on the fake
# driver (docs/remote.md "Compression"; not GPU numbers): MIB MiB (default 1024) of zeros and of
# random bytes, host to device and back, with GPUSHARE_REMOTE_COMPRESS off, lz4 and zstd (level 1),
# GPUSHARE_REMOTE_LANES=LANES (default 0: the control connection). One worker per variant (the
# release build, on the fake driver, whose device copies are memcpy); remote_app cbench times
# each direction, best of 3 after an untimed one. Prints a table; then one core's codec speeds
# (codec_speed.c).
set -u
B=$1
MIB=${2:-1024}
LANES=${3:-0}
WORK="$B/remote/bench-work"
rm -rf "$WORK"
mkdir -p "$WORK"
KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
APP="$B/remote/tests/remote_app"
echo "| data | compression | host to device, GB/s | device to host, GB/s | chunks the worker sent compressed / raw |"
echo "| --- | --- | --- | --- | --- |"
for kind in zeros random; do
    for codec in off lz4 zstd; do
        env GPUSHARE_REMOTE_KEY="$KEY" LD_LIBRARY_PATH="$B/fake" "$B/gpushare-remote-worker" --listen 127.0.0.1:0 >"$WORK/worker.out" 2>"$WORK/worker.err" &
        wpid=$!
        port=""
        i=0
        while [ -z "$port" ] && [ $i -lt 200 ]; do
            sleep 0.05; i=$((i + 1))
            port=$(sed -n 's/^gpushare-remote-worker listening \([0-9]*\).*$/\1/p' "$WORK/worker.out")
        done
        env GPUSHARE_REMOTE="127.0.0.1:$port" GPUSHARE_REMOTE_KEY="$KEY" GPUSHARE_REMOTE_COMPRESS="$codec" GPUSHARE_REMOTE_LANES="$LANES" \
            LD_LIBRARY_PATH="$B/remote" ASAN_OPTIONS=detect_leaks=0 "$APP" cbench "$kind" "$MIB" >"$WORK/app.out" 2>&1
        wait "$wpid"
        bw=$(sed -n 's/^cbench [a-z]* htod_gb_s \([0-9.]*\) dtoh_gb_s \([0-9.]*\)/\1 | \2/p' "$WORK/app.out")
        counts=$(sed -n 's/^gpushare-remote-worker: [a-z0-9]*: \([0-9]*\) chunks sent compressed, \([0-9]*\) raw.*/\1 \/ \2/p' "$WORK/worker.err")
        echo "| $kind | $codec | ${bw:-? | ?} | ${counts:--} |"
    done
done
# One core's codec speed (native/remote/tests/codec_speed.c), 256 MiB per row: what a link must
# be slower than for compression to pay.
echo
cc -std=c11 -O2 -I"$(dirname "$0")/../../include" -I"$(dirname "$0")/.." -o "$WORK/codec_speed" "$(dirname "$0")/codec_speed.c" "$(dirname "$0")/../compress.c" -ldl -pthread &&
    "$WORK/codec_speed" 256
