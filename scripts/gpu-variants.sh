# Sourced by scripts/gpu-launch-ab.sh and scripts/gpu-launch-cpu.sh: the variants they compare
# side by side and the rounds that run them. Variants: none (no library), nolimit (the library
# without a compute limit), limit100 (GPUSHARE_COMPUTE_LIMIT=100: the whole gate runs and never
# waits), and limit100-NAME for each other build in BASE_LIBS="NAME=PATH ..." (before/after a
# change). Needs LIB (this build's libgpushare.so). Every run is pinned to one core.
pin=""; command -v taskset > /dev/null && pin="taskset -c 1"
variants="none nolimit limit100"
declare -A other
for entry in ${BASE_LIBS:-}; do
  name=${entry%%=*} path=${entry#*=}
  [ -f "$path" ] || { echo "BASE_LIBS: $path does not exist"; exit 1; }
  other[$name]=$path
  variants="$variants limit100-$name"
done
board=$(mktemp -d)

# variant_run NAME CMD [ARGS...]: CMD as variant NAME.
variant_run() {
  local v=$1
  shift
  case $v in
    none) $pin "$@" ;;
    nolimit) LD_PRELOAD=$LIB $pin "$@" ;;
    limit100) GPUSHARE_COMPUTE_DIR=$board GPUSHARE_COMPUTE_LIMIT=100 LD_PRELOAD=$LIB $pin "$@" ;;
    limit100-*) GPUSHARE_COMPUTE_DIR=$board GPUSHARE_COMPUTE_LIMIT=100 LD_PRELOAD=${other[${v#limit100-}]} $pin "$@" ;;
  esac
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
