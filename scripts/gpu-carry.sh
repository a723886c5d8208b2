#!/usr/bin/env bash
# Packs what the GPU machine needs but does not have (no Node.js, no npm registry there) into
# .carry/ (git-ignored), from a checkout here after `npm ci && npm run build`:
#   .carry/node.xz       the node binary this checkout runs with (its native addons match it)
#   .carry/app.tar.xz    package.json, bin/, dist/, the daemon's native files (build/native:
#                        gpushare-exec, gpushare-smprobe, libgpushare.so, region/region_layout) and the production
#                        node_modules (npm ls --omit=dev), trimmed: better-sqlite3's and koffi's
#                        sources and build intermediates, and koffi's prebuilt binaries for
#                        other platforms, stay behind (only linux x64 goes)
# Then it unpacks the archive into a temporary directory and checks, with the carried node, that
# the CLI starts and both native addons load (better-sqlite3 opens a database, koffi loads
# libc), and that the carry is under 60 MiB. On the GPU machine: scripts/gpu-check-daemon.sh.
# Usage: bash scripts/gpu-carry.sh   then name ".carry" in the device call's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
die() { echo "gpu-carry: $*" >&2; exit 1; }
[ "$(uname -sm)" = "Linux x86_64" ] || die "run on linux x64 (the GPU machine's platform): the native addons are built for this one"
for f in dist/cli/main.js build/native/gpushare-exec build/native/gpushare-smprobe build/native/libgpushare.so node_modules/better-sqlite3/build/Release/better_sqlite3.node node_modules/koffi/build/koffi/linux_x64/koffi.node; do
  [ -e "$f" ] || die "$f is missing: run npm ci && npm run build first"
done
NODE_BIN=$(readlink -f "$(command -v node)")
mkdir -p .carry
if [ ! -s .carry/node.xz ] || [ "$NODE_BIN" -nt .carry/node.xz ]; then
  xz -T0 -c "$NODE_BIN" > .carry/node.xz.tmp && mv .carry/node.xz.tmp .carry/node.xz
fi
echo "$("$NODE_BIN" --version) $(uname -m)" > .carry/node.version

# The production dependency tree, as relative paths (node_modules/a, node_modules/a/node_modules/b).
deps=$(npm ls --omit=dev --all --parseable 2>/dev/null | sed "s#^$PWD/##" | grep '^node_modules/' | sort -u) || true
[ -n "$deps" ] || die "npm ls --omit=dev found no production dependencies (run npm ci)"
for d in $deps; do [ -d "$d" ] || die "$d is listed by npm ls but missing: run npm ci"; done
region_layout=$(ls build/native/region/region_layout 2>/dev/null || true)
# shellcheck disable=SC2086 # $deps is a list of paths without spaces (npm package names)
tar -cJf .carry/app.tar.xz.tmp \
  --exclude='node_modules/koffi/build/koffi/[!l]*' --exclude='node_modules/koffi/build/koffi/linux_[!x]*' \
  --exclude='node_modules/koffi/src' --exclude='node_modules/koffi/vendor' --exclude='node_modules/koffi/doc' \
  --exclude='node_modules/better-sqlite3/deps' --exclude='node_modules/better-sqlite3/src' \
  --exclude='node_modules/better-sqlite3/build/Release/obj' --exclude='node_modules/better-sqlite3/build/Release/obj.target' \
  --exclude='node_modules/better-sqlite3/build/Release/.deps' --exclude='node_modules/better-sqlite3/build/Release/test_extension.node' \
  --exclude='node_modules/better-sqlite3/build/Release/*.a' --exclude='node_modules/better-sqlite3/build/deps' \
  --exclude='*.map' --exclude='*.md' \
  package.json bin dist build/native/gpushare-exec build/native/gpushare-smprobe build/native/libgpushare.so $region_layout $deps
mv .carry/app.tar.xz.tmp .carry/app.tar.xz

# Self-check: what the GPU machine will unpack must run on its own, with the carried node.
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
tar -xJf .carry/app.tar.xz -C "$check"
xz -dc .carry/node.xz > "$check/node" && chmod +x "$check/node"
(cd "$check" && ./node bin/gpushare.js --version >/dev/null) || die "the unpacked CLI does not start"
(cd "$check" && ./node --input-type=module -e "
  import { createRequire } from 'node:module';
  const require = createRequire(process.cwd() + '/package.json');
  const Database = require('better-sqlite3');
  const db = new Database(':memory:');
  if (db.prepare('select 40 + 2 as v').get().v !== 42) throw new Error('better-sqlite3 answered wrong');
  const koffi = require('koffi');
  const libc = koffi.load('libc.so.6');
  if (libc.func('int getpid(void)')() !== process.pid) throw new Error('koffi: getpid differs');
  for (const m of ['fastify', 'pino', 'zod', 'commander', '@fastify/swagger', 'fastify-type-provider-zod']) await import(m);
") || die "the unpacked node_modules do not load (see above)"

bytes=$(cat .carry/node.xz .carry/app.tar.xz | wc -c)
ls -l .carry/node.xz .carry/app.tar.xz | awk '{printf "%s %.1f MiB\n", $NF, $5 / 1048576}'
printf 'carry total: %.1f MiB (limit 60 MiB); self-check passed (CLI starts, better-sqlite3 and koffi load)\n' "$(echo "$bytes / 1048576" | bc -l)"
[ "$bytes" -lt $((60 * 1024 * 1024)) ] || die "the carry is over 60 MiB"
