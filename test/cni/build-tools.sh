#!/usr/bin/env bash
# The CNI test tools: the reference CNI client `cnitool` on libcni 1.3.0 (CNI
# 1.1: STATUS, GC), built offline from the vendored upstream source in
# test/fixtures/cni-1.3.0 with Debian's Go, and Debian's reference plugins
# (containernetworking-plugins: /usr/lib/cni/{tuning,static,...}).
#
# Usage: build-tools.sh        install what is missing (root), build cnitool
#                              into $VFLEET_TOOLS/bin (default
#                              /var/cache/vfleet-tools/bin); does nothing when
#                              the binary is up to date.
# Prints the path of cnitool on stdout.
#
# cnitool gets one small patch (test/cni/cnitool-env.patch) for the tests:
# CNI_CACHE_DIR for libcni's result cache (upstream has only the compiled-in
# /var/lib/cni), CNI_GC_VALID_ATTACHMENTS for `gc` (upstream always sends
# none), and a last stderr line "CNI error code N" on a plugin's error (its
# text alone leaves the code out). Otherwise it behaves as upstream.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
TOOLS=${VFLEET_TOOLS:-/var/cache/vfleet-tools}
SRC="$repo/test/fixtures/cni-1.3.0"
PATCH="$here/cnitool-env.patch"
GOROOT_DEB=/usr/lib/go-1.23
GO="$GOROOT_DEB/bin/go"
NETNS_SRC=/usr/share/gocode/src/github.com/vishvananda/netns
log() { echo "build-tools: $*" >&2; }

# Debian packages: Go 1.23 from bookworm-backports (bookworm's own is 1.19,
# too old for libcni 1.3.0's go 1.21), libcni's one outside import, the
# reference plugins, and patch(1).
install_packages() {
  local base=() bpo=()
  [ -x "$GO" ] || bpo+=(golang-1.23-go)
  [ -d "$NETNS_SRC" ] || base+=(golang-github-vishvananda-netns-dev)
  [ -x /usr/lib/cni/static ] && [ -x /usr/lib/cni/tuning ] || base+=(containernetworking-plugins)
  command -v patch >/dev/null || base+=(patch)
  [ ${#base[@]} -gt 0 ] || [ ${#bpo[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || { log "missing Debian packages ${base[*]} ${bpo[*]}; run as root to install them"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  if [ ${#bpo[@]} -gt 0 ] && ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Backports come from the same Debian mirror as the release itself (as test/lab/lab.sh does).
    local uri
    uri=$(awk '/^URIs:/{u=$2} /^Suites:/ && / bookworm( |$)/{print u; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null)
    [ -n "$uri" ] || uri=$(awk '$1=="deb" && $3=="bookworm"{print $2; exit}' /etc/apt/sources.list 2>/dev/null)
    [ -n "$uri" ] || { log "cannot find the Debian bookworm mirror in the apt sources"; exit 1; }
    printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
      >/etc/apt/sources.list.d/sriov-lab-backports.sources
  fi
  log "installing ${base[*]} ${bpo[*]}"
  apt-get update -qq
  [ ${#base[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends "${base[@]}" >/dev/null
  [ ${#bpo[@]} -eq 0 ] || apt-get install -y -qq --no-install-recommends -t bookworm-backports "${bpo[@]}" >/dev/null
}

# Everything the binary is made of: when none of it changed, nothing is rebuilt.
fingerprint() {
  { (cd "$SRC" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    cat "$PATCH" "$here/build-tools.sh" | sha256sum
    "$GO" version
    cat "$NETNS_SRC"/*.go | sha256sum
  } | sha256sum | cut -d' ' -f1
}

build_cnitool() {
  local bin="$TOOLS/bin/cnitool" stamp="$TOOLS/bin/.cnitool.stamp" fp
  fp=$(fingerprint)
  if [ -x "$bin" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$fp" ]; then
    log "cnitool is up to date"
    echo "$bin"
    return 0
  fi
  # GOPATH mode: the vendored tree at its import path, then Debian's Go
  # sources (/usr/share/gocode) for github.com/vishvananda/netns.
  local gopath="$TOOLS/gopath" pkg="$TOOLS/gopath/src/github.com/containernetworking/cni"
  rm -rf "$pkg"
  mkdir -p "$pkg" "$TOOLS/bin"
  cp -a "$SRC/." "$pkg/"
  patch -s -p1 -d "$pkg" <"$PATCH"
  local env=(GOROOT="$GOROOT_DEB" GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOPROXY=off
    GOTOOLCHAIN=local GOFLAGS= GOENV=off GOCACHE="$TOOLS/gocache" CGO_ENABLED=0)
  log "building cnitool ($("$GO" version | cut -d' ' -f3), libcni 1.3.0, GOPATH mode, offline)"
  # pkg/skel is built too (not kept): it is what pulls in vishvananda/netns.
  env "${env[@]}" "$GO" build -o /dev/null github.com/containernetworking/cni/pkg/skel
  env "${env[@]}" "$GO" build -trimpath -o "$bin.tmp" github.com/containernetworking/cni/cnitool
  mv "$bin.tmp" "$bin"
  echo "$fp" >"$stamp"
  log "built $bin"
  echo "$bin"
}

# The reference plugins speak CNI up to 1.0.0 (Debian's 1.1.1): say so, so a
# 1.1.0 chain that includes them is not a surprise.
check_plugins() {
  local v
  v=$(echo '{"cniVersion":"0.4.0"}' | CNI_COMMAND=VERSION /usr/lib/cni/static)
  log "reference plugins in /usr/lib/cni: $v"
}

install_packages
build_cnitool
check_plugins
