# Sourced by scripts/gpu-launch-ab.sh, scripts/gpu-launch-cpu.sh and scripts/gpu-check-overhead.sh:
# the variants they compare side by side and the rounds that run them. Variants: none (no
# library), nolimit (the library without a compute limit), limit100 (GPUSHARE_COMPUTE_LIMIT=100:
# the whole gate runs and never waits), and limit100-NAME for each other build in
# BASE_LIBS="NAME=PATH ..." (before/after a change). The overhead harness's names: lib (= nolimit),
# mem (GPUSHARE_MEMORY_LIMIT=$MEM_LIMIT), memcompute (and the gate at 100), memcompute-NAME (a
# BASE_LIBS build's), memswap (mem plus GPUSHARE_SWAP=<a temp dir>, as `serve --swap` sets it:
# swappable allocations, a control socket; issue 22's "no cost when no swap happens"), none2 (no
# library again: the method's control). Needs LIB (this build's
# libgpushare.so). Every run is pinned to one core (pin; a script may set its own before a run).
pin=""; command -v taskset > /dev/null && [ "$(nproc)" -ge 2 ] && pin="taskset -c 1"
MEM_LIMIT=${MEM_LIMIT:-16Gi}
variants="none nolimit limit100"
declare -A other
for entry in ${BASE_LIBS:-}; do
  name=${entry%%=*} path=${entry#*=}
  [ -f "$path" ] || { echo "BASE_LIBS: $path does not exist"; exit 1; }
  other[$name]=$path
  variants="$variants limit100-$name"
done
board=$(mktemp -d)
swapdir=$(mktemp -d)

# variant_argv NAME: sets the array vargv to the command prefix that runs a command as variant NAME
# (env assignments, LD_PRELOAD, the pin); status 1 for an unknown NAME. The compute board is $board
# (a caller starting several governed processes at once gives each its own).
variant_argv() {
  local v=$1
  case $v in
    none | none2) vargv=($pin) ;;
    nolimit | lib) vargv=(env LD_PRELOAD="$LIB" $pin) ;;
    limit100) vargv=(env GPUSHARE_COMPUTE_DIR="$board" GPUSHARE_COMPUTE_LIMIT=100 LD_PRELOAD="$LIB" $pin) ;;
    limit100-*) vargv=(env GPUSHARE_COMPUTE_DIR="$board" GPUSHARE_COMPUTE_LIMIT=100 LD_PRELOAD="${other[${v#limit100-}]}" $pin) ;;
    mem) vargv=(env GPUSHARE_MEMORY_LIMIT="$MEM_LIMIT" LD_PRELOAD="$LIB" $pin) ;;
    memswap) vargv=(env GPUSHARE_MEMORY_LIMIT="$MEM_LIMIT" GPUSHARE_SWAP="$swapdir" LD_PRELOAD="$LIB" $pin) ;;
    memcompute) vargv=(env GPUSHARE_MEMORY_LIMIT="$MEM_LIMIT" GPUSHARE_COMPUTE_DIR="$board" GPUSHARE_COMPUTE_LIMIT=100 LD_PRELOAD="$LIB" $pin) ;;
    memcompute-*) vargv=(env GPUSHARE_MEMORY_LIMIT="$MEM_LIMIT" GPUSHARE_COMPUTE_DIR="$board" GPUSHARE_COMPUTE_LIMIT=100
      LD_PRELOAD="${other[${v#memcompute-}]}" $pin) ;;
    *) return 1 ;;
  esac
}

# variant_run NAME CMD [ARGS...]: CMD as variant NAME.
variant_run() {
  local v=$1
  shift
  variant_argv "$v" || { echo "{\"error\": \"unknown variant $v\"}"; return; }
  "${vargv[@]}" "$@"
}

# rounds N CMD [ARGS...]: N rounds of every variant, the order rotated round by round (drift
# and warm caches favour none); prints "VARIANT OUTPUT" lines.
rounds() {
  local n=$1 r j k
  shift
  local vs=($variants)
  for r in $(seq "$n"); do
    for j in $(seq 0 $((${#vs[@]} - 1))); do
      k=$(( (j + r) % ${#vs[@]} ))
      echo "${vs[$k]} $(variant_run "${vs[$k]}" "$@")"
    done
  done
}
