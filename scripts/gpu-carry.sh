#!/usr/bin/env bash
# Packs what the GPU machine needs but does not have (it has no Node.js and no npm registry):
# the node binary and the built app with its runtime dependencies, into .carry/ (git-ignored).
# Usage: bash scripts/gpu-carry.sh   (after npm run build), then name .carry in the device call.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .carry
if [ ! -s .carry/node.xz ] || [ "$(readlink -f "$(command -v node)")" -nt .carry/node.xz ]; then
  xz -T0 -c "$(readlink -f "$(command -v node)")" > .carry/node.xz
fi
# Runtime dependencies only, and koffi's prebuilt binary for linux x64 only (the rest is 27 MB).
tar -cJf .carry/app.tar.xz \
  --exclude='node_modules/koffi/build/koffi/[!l]*' --exclude='node_modules/koffi/build/koffi/linux_[!x]*' \
  --exclude='node_modules/koffi/src' --exclude='node_modules/koffi/vendor' \
  package.json bin dist scripts $(ls -d build/native 2>/dev/null) node_modules/commander node_modules/koffi node_modules/zod
du -sh .carry/*
