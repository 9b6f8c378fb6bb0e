# tests/netns/lib_netns.sh - N network namespaces on one bridge, for LAN tests (sourced, not a test).
#
# Interface (bash; source it, then call netns_setup):
#   netns_require               exit 77 (ctest SKIP) with the reason on stdout unless namespaces can be
#                               made here (root, `ip`, and a probe `ip netns add` that works).
#                               netns_setup calls it itself.
#   netns_setup N               creates a hub namespace holding bridge br0 (multicast snooping off) and
#                               N host namespaces, each with lo up and eth0 = one end of a veth pair
#                               whose other end is on br0. Host i (1..N) gets
#                                 IPv4 10.77.0.<i>/24        (NETNS_V4_PREFIX, default 10.77.0)
#                                 IPv6 fd77::<i>/64 nodad    (NETNS_V6_PREFIX, default fd77:)
#                               plus its IPv6 link-local address; multicast on; DAD off; a route
#                               224.0.0.0/4 dev eth0 (no default route exists, and IPv4 multicast
#                               sockets that do not name an interface need one); IPv6 multicast
#                               routes are the kernel's default (ff00::/8 on every interface). Nothing touches
#                               the root namespace, so parallel runs never collide (every run's names
#                               carry a unique prefix).
#   netns_add_host              one more host on the same bridge: index N+1, left in NETNS_N (do not
#                               call it in a $(...) subshell: the new host would not be recorded).
#   netns_del_host I            removes host I (its processes are killed first: a host "unplugged").
#   netns_link I up|down        takes host I's eth0 up or down (cable pulled / plugged).
#   netns_add_addr I CIDR       adds an address to host I's eth0 (IPv6 with nodad).
#   netns_del_addr I CIDR       removes it.
#   nsx I CMD...                runs CMD inside host I (ip netns exec); `nsx I cmd &` gives $! = the
#                               command's own pid (ip execs it).
#   netns_pids I                pids of the processes running inside host I.
# Variables after netns_setup:
#   NETNS_N                     number of hosts
#   netns_name[I]               namespace name of host I; netns_hub: the bridge's namespace
#   netns_ip4[I] netns_ip6[I]   host I's addresses without prefix length
# Cleanup: an EXIT trap (chained after whatever EXIT trap the caller set before netns_setup, which
# runs first: e.g. lib_node.sh kills its processes) kills every process still inside our namespaces,
# by pid, and deletes every namespace this run created; INT/TERM/HUP exit through it. It only ever
# touches namespaces whose names it made. netns_cleanup may also be called directly.
# Knobs: NETNS_KEEP=1 leaves the namespaces for debugging (names are printed).

NETNS_V4_PREFIX="${NETNS_V4_PREFIX:-10.77.0}"
NETNS_V6_PREFIX="${NETNS_V6_PREFIX:-fd77:}"
NETNS_N=0
declare -a netns_name=() netns_ip4=() netns_ip6=()
declare -a _netns_made=()
netns_hub=""
_netns_tag="lp2p$$x$RANDOM"
_netns_trap_set=0

netns_require() {
  local why=""
  if [ "$(id -u)" != 0 ]; then
    why="not root (network namespaces need CAP_SYS_ADMIN)"
  elif ! command -v ip >/dev/null 2>&1; then
    why="the ip command (iproute2) is missing"
  else
    local probe="${_netns_tag}probe" out
    if ! out="$(ip netns add "$probe" 2>&1)"; then
      why="ip netns add failed: $out"
    else
      if ! out="$(ip -n "$probe" link add v0 type veth peer name v1 2>&1)"; then
        why="cannot create veth pairs: $out"
      elif ! out="$(ip -n "$probe" link add b0 type bridge 2>&1)"; then
        why="cannot create a bridge: $out"
      fi
      ip netns del "$probe" 2>/dev/null
    fi
  fi
  if [ -n "$why" ]; then
    echo "SKIP: no network namespaces here: $why"
    exit 77
  fi
}

_netns_on_exit() {
  local rc=$?
  eval "${_netns_prev_trap:-:}"
  netns_cleanup
  exit "$rc"
}

_netns_install_trap() {
  [ "$_netns_trap_set" = 1 ] && return
  _netns_prev_trap="$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")"
  trap _netns_on_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  trap 'exit 129' HUP
  _netns_trap_set=1
}

_netns_kill_in() { # kill every process inside namespace $1 (by pid), then wait a little
  local ns="$1" p i
  local pids
  pids="$(ip netns pids "$ns" 2>/dev/null)"
  [ -n "$pids" ] || return 0
  for p in $pids; do kill "$p" 2>/dev/null; done
  for ((i = 0; i < 20; i++)); do
    pids="$(ip netns pids "$ns" 2>/dev/null)"
    [ -n "$pids" ] || return 0
    sleep 0.1
  done
  for p in $pids; do kill -9 "$p" 2>/dev/null; done
}

netns_cleanup() {
  local ns
  if [ -n "${NETNS_KEEP:-}" ] && [ "${#_netns_made[@]}" -gt 0 ]; then
    echo "netns kept: ${_netns_made[*]}"
    return 0
  fi
  for ns in "${_netns_made[@]}"; do _netns_kill_in "$ns"; done
  for ns in "${_netns_made[@]}"; do ip netns del "$ns" 2>/dev/null; done
  _netns_made=()
}

_netns_mk() { # _netns_mk NAME : create a namespace (recorded for cleanup) with lo up
  local ns="$1"
  ip netns add "$ns" || return 1
  _netns_made+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 >/dev/null 2>&1
  return 0
}

_netns_host() { # _netns_host I : make host I and plug it into br0
  local i="$1" ns="${_netns_tag}h$1"
  _netns_mk "$ns" || return 1
  ip -n "$netns_hub" link add "p$i" type veth peer name eth0 netns "$ns" || return 1
  ip -n "$netns_hub" link set "p$i" master br0 up || return 1
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.eth0.accept_dad=0 >/dev/null 2>&1
  ip -n "$ns" link set eth0 multicast on up || return 1
  ip -n "$ns" addr add "$NETNS_V4_PREFIX.$i/24" dev eth0 || return 1
  ip -n "$ns" addr add "$NETNS_V6_PREFIX:$i/64" dev eth0 nodad || return 1
  ip -n "$ns" route add 224.0.0.0/4 dev eth0 || return 1
  netns_name[$i]="$ns"
  netns_ip4[$i]="$NETNS_V4_PREFIX.$i"
  netns_ip6[$i]="$NETNS_V6_PREFIX:$i"
}

netns_setup() {
  local n="$1" i
  netns_require
  _netns_install_trap
  netns_hub="${_netns_tag}hub"
  _netns_mk "$netns_hub" || { echo "FAIL: netns_setup: cannot create $netns_hub"; exit 1; }
  ip -n "$netns_hub" link add br0 type bridge mcast_snooping 0 2>/dev/null ||
    ip -n "$netns_hub" link add br0 type bridge || { echo "FAIL: netns_setup: no bridge"; exit 1; }
  ip -n "$netns_hub" link set br0 up
  for ((i = 1; i <= n; i++)); do
    _netns_host "$i" || { echo "FAIL: netns_setup: host $i"; exit 1; }
  done
  NETNS_N="$n"
  _netns_wait_ll
}

_netns_wait_ll() { # wait (max 3 s) until every host's IPv6 link-local address is usable
  local i k
  for ((k = 0; k < 30; k++)); do
    local pending=0
    for ((i = 1; i <= NETNS_N; i++)); do
      [ -n "${netns_name[$i]:-}" ] || continue
      ip -n "${netns_name[$i]}" -6 addr show dev eth0 scope link 2>/dev/null | grep -q 'tentative' && pending=1
      ip -n "${netns_name[$i]}" -6 addr show dev eth0 scope link 2>/dev/null | grep -q 'inet6' || pending=1
    done
    [ "$pending" = 0 ] && return 0
    sleep 0.1
  done
  return 0
}

netns_add_host() {
  local i=$((NETNS_N + 1))
  _netns_host "$i" || { echo "FAIL: netns_add_host $i" >&2; return 1; }
  NETNS_N="$i"
  _netns_wait_ll
}

netns_del_host() {
  local i="$1" ns="${netns_name[$1]:-}" k
  [ -n "$ns" ] || return 1
  _netns_kill_in "$ns"
  ip netns del "$ns" 2>/dev/null
  for k in "${!_netns_made[@]}"; do [ "${_netns_made[$k]}" = "$ns" ] && unset '_netns_made[k]'; done
  _netns_made=("${_netns_made[@]}")
  netns_name[$i]=""
}

netns_link() { ip -n "${netns_name[$1]}" link set eth0 "$2"; }
netns_add_addr() {
  case "$2" in *:*) ip -n "${netns_name[$1]}" addr add "$2" dev eth0 nodad ;; *) ip -n "${netns_name[$1]}" addr add "$2" dev eth0 ;; esac
}
netns_del_addr() { ip -n "${netns_name[$1]}" addr del "$2" dev eth0; }
nsx() { local i="$1"; shift; ip netns exec "${netns_name[$i]}" "$@"; }
netns_pids() { ip netns pids "${netns_name[$1]}" 2>/dev/null; }
