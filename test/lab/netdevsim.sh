#!/usr/bin/env bash
# Builds netdevsim.ko, the kernel's devlink/switchdev test driver, for the
# lab guest's kernel ($LAB_CACHE/kernel-version). Debian's kernel does not
# ship it, but it builds out of tree from the distribution's own source and
# headers, unpatched:
#   apt-get install linux-headers-<kver> linux-source-6.1
#   tar -xJf /usr/src/linux-source-6.1.tar.xz linux-source-6.1/drivers/net/netdevsim/
#   make -C /usr/src/linux-headers-<kver> M=<dir> CONFIG_NETDEVSIM=m modules
# and leaves $LAB_CACHE/netdevsim/netdevsim.ko (test/lab/netdevsim.ts loads
# it in the guest). Idempotent: does nothing when the module there was built
# for this kernel. Needs root for apt-get and the cache; run after
# `lab.sh setup` (test/lab/run.sh and .ci/run call it so).
set -euo pipefail
CACHE="${SRIOV_LAB_CACHE:-${LAB_CACHE:-/var/cache/sriov-lab}}"
log() { echo "netdevsim: $*" >&2; }

[ -f "$CACHE/kernel-version" ] || { log "no lab kernel in $CACHE: run test/lab/lab.sh setup first"; exit 1; }
kver=$(cat "$CACHE/kernel-version")
out="$CACHE/netdevsim"
# The stamp names the kernel the module was built for; a new lab kernel rebuilds it.
if [ -f "$out/netdevsim.ko" ] && [ "$(cat "$out/kernel-version" 2>/dev/null)" = "$kver" ]; then
  log "netdevsim.ko for $kver is built ($out/netdevsim.ko)"
  exit 0
fi

headers="/usr/src/linux-headers-$kver"
source_tar=/usr/src/linux-source-6.1.tar.xz
packages=()
[ -d "$headers" ] || packages+=("linux-headers-$kver")
[ -f "$source_tar" ] || packages+=(linux-source-6.1)
command -v make >/dev/null || packages+=(make)
command -v gcc >/dev/null || packages+=(gcc)
if [ ${#packages[@]} -gt 0 ]; then
  log "installing ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null 2>&1 || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
  }
fi

work=$(mktemp -d /tmp/netdevsim-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
# Only the driver's directory: the whole tree is over a gigabyte unpacked.
tar -xJf "$source_tar" -C "$work" linux-source-6.1/drivers/net/netdevsim/
src="$work/linux-source-6.1/drivers/net/netdevsim"
log "building netdevsim.ko for $kver"
make -s -C "$headers" M="$src" CONFIG_NETDEVSIM=m modules >"$work/make.log" 2>&1 || {
  cat "$work/make.log" >&2
  log "build failed"
  exit 1
}
mkdir -p "$out"
install -m 0644 "$src/netdevsim.ko" "$out/netdevsim.ko.new"
mv "$out/netdevsim.ko.new" "$out/netdevsim.ko"
echo "$kver" >"$out/kernel-version"
log "built $out/netdevsim.ko"
