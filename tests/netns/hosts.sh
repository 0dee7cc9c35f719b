#!/usr/bin/env bash
# Simulated hosts on one machine: Linux network namespaces joined by veth
# links to a bridge, for tests of the multi-host launch path (hostfile,
# remote Open MPI daemons, TCP between hosts, a lost host) without a cluster.
#
#   tests/netns/hosts.sh create PREFIX N [NET]   # NET = first three octets, default 10.77.0
#   tests/netns/hosts.sh destroy PREFIX          # idempotent: nothing there is fine
#   tests/netns/hosts.sh check                   # exit 0 if namespaces can be made here
#
# create makes namespace PREFIX-head holding bridge br0 = NET.254/24 (mpirun
# runs there) and PREFIX-node1..N, each with eth0 = NET.i/24 on a veth whose
# peer (n<i>) is created inside the head namespace and enslaved to br0, so
# that deleting the namespaces deletes every link. There is no default route
# anywhere: nothing can leave the machine. It prints the node names, one a
# line, once every node answers a TCP connect from the head ("connection
# refused" = up; ping is not installed). A leftover set with the same prefix
# is destroyed first.
#
# destroy kills (SIGKILL, by PID) whatever still runs in those namespaces,
# then deletes them. Run commands on a host with
#   ip netns exec PREFIX-node1 CMD...
# and let Open MPI reach the hosts through tests/netns/rsh-agent.sh.
set -uo pipefail

die() { echo "hosts.sh: $*" >&2; exit 1; }

# namespaces of a prefix (only exact PREFIX-head / PREFIX-nodeI names)
list_ns() { ip netns list 2>/dev/null | awk '{ print $1 }' | grep -E "^$1-(head|node[0-9]+)\$"; }

destroy() {
  local prefix=$1 ns pids
  for ns in $(list_ns "$prefix"); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null
  done
  for ns in $(list_ns "$prefix"); do
    ip netns delete "$ns" 2>/dev/null || { sleep 0.2; ip netns delete "$ns" 2>/dev/null; }
  done
  [[ -z "$(list_ns "$prefix")" ]] || die "could not delete: $(list_ns "$prefix" | tr '\n' ' ')"
}

# can this machine make a namespace with a veth and a bridge? (root, iproute2)
check() {
  [[ $(id -u) -eq 0 ]] || { echo "not root"; return 1; }
  command -v ip >/dev/null || { echo "no ip command (apt-get install iproute2)"; return 1; }
  local probe="dptprobe$$" msg
  if ! msg=$(ip netns add "$probe" 2>&1 && ip -n "$probe" link add br0 type bridge 2>&1 &&
             ip -n "$probe" link add v0 type veth peer name v1 2>&1); then
    ip netns delete "$probe" 2>/dev/null
    echo "ip netns failed: $msg"; return 1
  fi
  ip netns delete "$probe"
}

create() {
  local prefix=$1 n=$2 net=${3:-10.77.0} head i node
  [[ "$n" =~ ^[1-9][0-9]*$ && $n -le 250 ]] || die "N must be 1..250"
  [[ "$net" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "NET must be three octets, e.g. 10.77.0"
  head="$prefix-head"
  destroy "$prefix"
  set -e
  ip netns add "$head"
  ip -n "$head" link set lo up
  ip -n "$head" link add br0 type bridge
  ip -n "$head" addr add "$net.254/24" dev br0
  ip -n "$head" link set br0 up
  for ((i = 1; i <= n; i++)); do
    node="$prefix-node$i"
    ip netns add "$node"
    ip -n "$node" link set lo up
    ip -n "$head" link add "n$i" type veth peer name eth0 netns "$node"
    ip -n "$head" link set "n$i" master br0 up
    ip -n "$node" addr add "$net.$i/24" dev eth0
    ip -n "$node" link set eth0 up
  done
  set +e
  local t
  for ((i = 1; i <= n; i++)); do
    for ((t = 0; t < 50; t++)); do
      [[ $(ip netns exec "$head" timeout 1 bash -c "echo >/dev/tcp/$net.$i/9" 2>&1) == *refused* ]] && break
      sleep 0.1
    done
    ((t < 50)) || { destroy "$prefix"; die "host $prefix-node$i ($net.$i) does not answer"; }
    echo "$prefix-node$i"
  done
}

case "${1:-}" in
  create)  [[ $# -ge 3 ]] || die "usage: hosts.sh create PREFIX N [NET]"; create "$2" "$3" "${4:-}" ;;
  destroy) [[ $# -eq 2 ]] || die "usage: hosts.sh destroy PREFIX"; destroy "$2" ;;
  check)   check ;;
  *) die "usage: hosts.sh create PREFIX N [NET] | destroy PREFIX | check" ;;
esac
