#!/bin/sh
# fetch-nvml-header.sh DEST
#
# Puts NVIDIA's nvml.h at DEST/usr/include/nvml.h (make fetch-nvml-header passes
# build/vendor/nvml, where check-headers looks), taken from Debian's libnvidia-ml-dev.
#
# It only downloads and unpacks that one package (apt-get download + dpkg -x into a
# temporary directory, keeping nvml.h): nothing is installed. In particular it never
# installs libnvidia-ml1, which would put a real NVML on the machine for tests to find
# instead of the fake. If apt does not know libnvidia-ml-dev, it adds Debian's non-free
# component (as /etc/apt/sources.list.d/gpushare-nonfree.sources) and refreshes that one
# source. Anything unavailable (not Debian, not root, no network) ends with a message and
# exit status 0: the header check then reports itself skipped.
set -u

dest=$1
sources_file=/etc/apt/sources.list.d/gpushare-nonfree.sources
keyring=/usr/share/keyrings/debian-archive-keyring.gpg

skip() {
    echo "fetch-nvml-header: SKIPPED ($1)"
    exit 0
}

if [ -f "$dest/usr/include/nvml.h" ]; then
    echo "fetch-nvml-header: already present: $dest/usr/include/nvml.h"
    exit 0
fi
command -v apt-get >/dev/null 2>&1 && command -v apt-cache >/dev/null 2>&1 && command -v dpkg >/dev/null 2>&1 ||
    skip "needs apt-get, apt-cache and dpkg"

tmp=$(mktemp -d) || skip "cannot create a temporary directory"
trap 'rm -rf "$tmp"' EXIT

known() {
    apt-cache show libnvidia-ml-dev >/dev/null 2>&1
}

# Adds Debian's non-free component for this release and refreshes only that source.
add_nonfree_source() {
    os_id=$(. /etc/os-release 2>/dev/null && echo "${ID:-}")
    codename=$(. /etc/os-release 2>/dev/null && echo "${VERSION_CODENAME:-}")
    [ "$os_id" = debian ] || skip "libnvidia-ml-dev is unknown to apt and this is not Debian (ID=$os_id)"
    [ -f "$keyring" ] || skip "no $keyring to verify Debian's archive"
    if [ ! -e "$sources_file" ]; then
        [ "$(id -u)" = 0 ] || skip "libnvidia-ml-dev is unknown to apt; run as root to add $sources_file"
        cat >"$sources_file" <<EOF || skip "cannot write $sources_file"
# Added by gpushare's native/scripts/fetch-nvml-header.sh to download libnvidia-ml-dev
# (NVIDIA's nvml.h) for the header check. Nothing from it is installed by that script.
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${codename:-bookworm}
Components: non-free
Signed-By: $keyring
EOF
        echo "fetch-nvml-header: added $sources_file (Debian ${codename:-bookworm} non-free)"
    fi
    apt-get update -o Dir::Etc::sourcelist="$sources_file" -o Dir::Etc::sourceparts=- \
        -o APT::Get::List-Cleanup=0 >"$tmp/update.log" 2>&1 ||
        skip "apt-get update of $sources_file failed: $(tail -n 1 "$tmp/update.log")"
}

known || add_nonfree_source
known || skip "apt still does not know libnvidia-ml-dev"

# apt-get download fetches the one .deb into the current directory; no dependencies, no install.
(cd "$tmp" && apt-get download libnvidia-ml-dev) >"$tmp/download.log" 2>&1 ||
    skip "apt-get download libnvidia-ml-dev failed: $(tail -n 1 "$tmp/download.log")"
deb=$(ls "$tmp"/libnvidia-ml-dev_*.deb 2>/dev/null | head -n 1)
[ -n "$deb" ] || skip "apt-get download produced no .deb"
mkdir "$tmp/unpacked" && dpkg -x "$deb" "$tmp/unpacked" || skip "dpkg -x $(basename "$deb") failed"
header=$(find "$tmp/unpacked" -name nvml.h -type f | head -n 1)
[ -n "$header" ] || skip "$(basename "$deb") has no nvml.h"
mkdir -p "$dest/usr/include" && cp "$header" "$dest/usr/include/nvml.h" || skip "cannot write $dest"
echo "fetch-nvml-header: $dest/usr/include/nvml.h (from $(basename "$deb"))"
