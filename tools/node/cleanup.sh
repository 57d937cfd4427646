#!/usr/bin/env bash
# Removes everything the test world's real node made on this machine (issue #16): its processes
# (kubelet, kube-proxy, containerd, shims, every container), mounts, cgroups, network namespace,
# state directories and the monitor's host data directory. Safe to run when nothing is there.
#
# Run by: the node janitor when the test process (or `make cluster`) goes away, `make
# cluster-down`, and before a new node starts (leftovers of a SIGKILLed run).
#
# Usage: tools/node/cleanup.sh [--keep-images]
#   --keep-images  keep containerd's content store (image import is then skipped next time)
set -uo pipefail

# The same names tests/support/node uses.
NODE_NETNS=${FGM_NODE_NETNS:-fgm-node}
STATE_DIR=${FGM_NODE_STATE:-/run/fgm-node}
LIB_DIR=${FGM_NODE_LIB:-/var/lib/fgm-node}
CGROUP_ROOT=${FGM_NODE_CGROUP_ROOT:-kubelet}
DATA_DIRS=${FGM_NODE_DATA_DIRS:-/var/lib/fine-grained-monitor}
HOST_VETH=${FGM_NODE_HOST_VETH:-fgm-node0}
keep_images=0
[[ ${1:-} == --keep-images ]] && keep_images=1

log() { echo "node-cleanup: $*" >&2; }

# Processes by their own pid files first (kubelet, kube-proxy, containerd), then anything still
# running from our binaries or talking to our containerd socket (the shims).
for pidfile in "$STATE_DIR"/*.pid; do
  [[ -f $pidfile ]] || continue
  pid=$(cat "$pidfile" 2>/dev/null)
  [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null && log "killed $(basename "$pidfile" .pid) ($pid)"
done
for proc in /proc/[0-9]*; do
  cmd=$({ tr '\0' ' ' <"$proc/cmdline"; } 2>/dev/null) || continue
  if [[ $cmd == *"$STATE_DIR/containerd"* || $cmd == *"$LIB_DIR/"* ]]; then
    kill -KILL "${proc#/proc/}" 2>/dev/null && log "killed ${proc#/proc/}: ${cmd:0:100}"
  fi
done

# Every process left in the node's cgroups (the containers), in every hierarchy, until none is
# left; then the cgroups themselves, deepest first.
hierarchies=()
for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
  [[ -d $h$CGROUP_ROOT ]] && hierarchies+=("$h$CGROUP_ROOT")
done
for _ in 1 2 3 4 5 6 7 8 9 10; do
  left=0
  for root in "${hierarchies[@]}"; do
    while IFS= read -r procs; do
      while IFS= read -r pid; do
        [[ -n $pid ]] || continue
        kill -KILL "$pid" 2>/dev/null
        left=1
      done <"$procs"
    done < <(find "$root" -name cgroup.procs 2>/dev/null)
  done
  [[ $left == 0 ]] && break
  sleep 0.3
done
for root in "${hierarchies[@]}"; do
  # A frozen v1 freezer cgroup would keep its processes: thaw before removing.
  find "$root" -name freezer.state -exec sh -c 'echo THAWED > "$1"' _ {} \; 2>/dev/null
  find "$root" -depth -type d -exec rmdir {} \; 2>/dev/null
  [[ -d $root ]] && log "could not remove every cgroup under $root"
done

# Mounts under our directories (container root filesystems, projected volumes, network
# namespaces), deepest first.
for prefix in "$STATE_DIR" "$LIB_DIR"; do
  awk -v p="$prefix" '$5 == p || index($5, p "/") == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while IFS= read -r mnt; do
    umount -l "$mnt" 2>/dev/null || log "cannot unmount $mnt"
  done
done

# The node's network namespace takes its veth, bridge, pod interfaces and iptables rules along.
if ip netns list 2>/dev/null | grep -qw "$NODE_NETNS"; then
  ip netns delete "$NODE_NETNS" && log "deleted network namespace $NODE_NETNS"
fi
ip link delete "$HOST_VETH" 2>/dev/null

rm -rf "$STATE_DIR"
if [[ $keep_images == 1 ]]; then
  find "$LIB_DIR" -mindepth 1 -maxdepth 1 ! -name containerd -exec rm -rf {} + 2>/dev/null
  # Only the content store and snapshots stay; metadata of the images too.
else
  rm -rf "$LIB_DIR"
fi
# Only data directories the test world made (tests/support/node marks them): never a
# directory holding someone's real data.
for d in $DATA_DIRS; do
  if [[ -f $d/.fgm-test-node ]]; then
    rm -rf "$d"
  elif [[ -e $d ]]; then
    log "left $d alone: it was not made by the test world (no .fgm-test-node mark)"
  fi
done
exit 0
