#!/usr/bin/env bash
# Builds here what scripts/gpu-check-k8s.sh needs beyond scripts/gpu-carry.sh's carry:
#   .carry/k8s/pods/pods-run.mjs  test/k8s/pods-run.ts (the kubelet's and the runtime's part:
#                                 fake API server, DRA kubelet plugin, CDI applier) bundled into
#                                 one ES module by esbuild (tsx's own, from node_modules), npm
#                                 packages left as imports of the carried node_modules. It sits
#                                 three levels below the root so src/k8s/grpc's proto path
#                                 (../../../proto/k8s) finds proto/k8s in the checkout.
#   build/gpu/k8s_probe           scripts/gpu/k8s_probe.c (plain C, dlopens libcuda.so.1)
# Usage: bash scripts/gpu-carry.sh && bash scripts/k8s-pods-bundle.sh, then carry [".carry", "build/gpu"].
set -euo pipefail
cd "$(dirname "$0")/.."
ESBUILD=node_modules/.bin/esbuild
[ -x "$ESBUILD" ] || { echo "k8s-pods-bundle: $ESBUILD is missing (npm ci installs it with tsx)" >&2; exit 1; }
mkdir -p .carry/k8s/pods build/gpu
"$ESBUILD" test/k8s/pods-run.ts --bundle --platform=node --format=esm --target=node20 --packages=external \
  --log-level=warning --outfile=.carry/k8s/pods/pods-run.mjs
cc -O2 -Wall -Wextra -Werror -o build/gpu/k8s_probe scripts/gpu/k8s_probe.c -ldl
ls -l .carry/k8s/pods/pods-run.mjs build/gpu/k8s_probe | awk '{print $NF, $5, "bytes"}'
