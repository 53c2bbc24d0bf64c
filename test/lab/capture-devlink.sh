#!/usr/bin/env bash
# Captures devlink's answers on netdevsim in the lab guest, as fixtures for
# the unit tests of src/host/linux/devlink.ts (test/fixtures/devlink/):
#   bash test/lab/netdevsim.sh
#   test/lab/lab.sh run -- bash test/lab/capture-devlink.sh test/fixtures/devlink
# Each command's stdout goes to NAME.json (or .txt), its stderr to NAME.err
# (devlink's refusals as it prints them; every one exits 1).
set -uo pipefail
out=${1:?usage: capture-devlink.sh DIR}
mkdir -p "$out"
[ "${LAB_GUEST:-}" = 1 ] || { echo "run it in the lab guest (test/lab/lab.sh run -- ...)" >&2; exit 2; }
bb="$LAB_CACHE/bb/bin/busybox"
mods="$LAB_CACHE/root/lib/modules/$(cat "$LAB_CACHE/kernel-version")"
grep -q '^psample ' /proc/modules || "$bb" insmod "$(find "$mods" -name psample.ko | head -1)"
grep -q '^netdevsim ' /proc/modules || "$bb" insmod "$LAB_CACHE/netdevsim/netdevsim.ko"
grep -q ' /sys/kernel/debug ' /proc/mounts || mount -t debugfs debugfs /sys/kernel/debug
echo "10 1" >/sys/bus/netdevsim/new_device
sleep 1
dev=netdevsim/netdevsim10
sys=/sys/bus/netdevsim/devices/netdevsim10

# cap NAME CMD...: one command's answer
cap() {
  local name=$1
  shift
  "$@" >"$out/$name.out" 2>"$out/$name.err"
  for f in "$out/$name.out" "$out/$name.err"; do [ -s "$f" ] || rm -f "$f"; done
}

{
  echo "devlink: $(devlink -V)"
  echo "kernel: $(uname -r)"
  echo "max_vfs: $(cat /sys/kernel/debug/netdevsim/netdevsim10/max_vfs)"
  echo "sysfs: $(ls $sys | tr '\n' ' ')"
  for n in $sys/net/*; do
    echo "net $(basename $n): phys_port_name=$(cat $n/phys_port_name 2>&1) phys_switch_id=$(cat $n/phys_switch_id 2>&1) device=$(readlink $n/device)"
  done
} >"$out/environment.txt" 2>&1

cap eswitch-show-legacy devlink -j dev eswitch show $dev
cap port-show-legacy devlink -j port show
cap rate-show-no-vfs devlink -j port function rate show
cap rate-add-legacy devlink port function rate add $dev/vfleet-acme tx_share 100mbit
echo 4 >$sys/sriov_numvfs
cap numvfs-4-to-2 sh -c "echo 2 > $sys/sriov_numvfs"
cap numvfs-above-max sh -c "echo 0 > $sys/sriov_numvfs; echo 5 > $sys/sriov_numvfs; r=\$?; echo 4 > $sys/sriov_numvfs; exit \$r"
cap rate-show-legacy-vfs devlink -j port function rate show
cap eswitch-set-switchdev devlink dev eswitch set $dev mode switchdev
cap eswitch-show-switchdev devlink -j dev eswitch show $dev
cap port-show-switchdev devlink -j port show
ls $sys/net >"$out/switchdev-netdevs.txt"
for n in $sys/net/*; do echo "$(basename $n) $(cat $n/phys_port_name) $(cat $n/phys_switch_id)"; done >"$out/switchdev-netdevs.txt"
cap rate-show-switchdev devlink -j port function rate show
cap rate-add-node devlink port function rate add $dev/vfleet-acme tx_share 100mbit tx_max 200mbit
cap rate-add-node-again devlink port function rate add $dev/vfleet-acme tx_share 100mbit
cap rate-add-node2 devlink port function rate add $dev/vfleet-beta
cap rate-set-leaf devlink port function rate set $dev/128 tx_share 10mbit tx_max 50mbit parent vfleet-acme
cap rate-set-leaf2 devlink port function rate set $dev/129 parent vfleet-acme
# The tool's own check, with the given tx_max or the object's current one.
cap rate-set-share-above-max devlink port function rate set $dev/130 tx_share 20mbit tx_max 10mbit
cap rate-set-node-parent devlink port function rate set $dev/vfleet-beta parent vfleet-acme
cap rate-show-tree devlink -j port function rate show
cap rate-show-one devlink -j port function rate show $dev/128
cap rate-set-loop devlink port function rate set $dev/vfleet-acme parent vfleet-beta
cap rate-set-parent-missing devlink port function rate set $dev/130 parent vfleet-nope
cap rate-del-with-children devlink port function rate del $dev/vfleet-acme
cap eswitch-legacy-with-nodes devlink dev eswitch set $dev mode legacy
cap rate-set-kbit devlink port function rate set $dev/131 tx_max 1500kbit tx_share 1000kbit
cap rate-show-kbit devlink -j port function rate show $dev/131
cap rate-show-text devlink port function rate show
cap rate-set-noparent devlink port function rate set $dev/129 noparent
cap rate-del-missing devlink port function rate del $dev/vfleet-nope
cap rate-del-leaf devlink port function rate del $dev/128
cap rate-show-missing-dev devlink -j port function rate show netdevsim/netdevsim99/1
cap eswitch-show-missing-dev devlink -j dev eswitch show netdevsim/netdevsim99
cap eswitch-set-missing-dev devlink dev eswitch set netdevsim/netdevsim99 mode switchdev
cap rate-add-missing-dev devlink port function rate add netdevsim/netdevsim99/vfleet-x tx_max 10mbit
cap numvfs-switchdev-4-to-0 sh -c "echo 4 > $sys/sriov_numvfs; echo 0 > $sys/sriov_numvfs"
cap rate-show-after-numvfs-0 devlink -j port function rate show
cap port-show-switchdev-no-vfs devlink -j port show
echo 10 >/sys/bus/netdevsim/del_device
for f in "$out"/*.out; do
  # JSON answers are stored as .json, the rest as .txt.
  if head -c1 "$f" | grep -q '{'; then mv "$f" "${f%.out}.json"; else mv "$f" "${f%.out}.txt"; fi
done
echo "captured into $out"
