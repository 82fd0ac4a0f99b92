# Extra helpers for samples/anomalies/record.sh (on top of samples/lib/netns.sh).
# Adapted copies of samples/incidents/helpers.sh (not shared, so either recorder can change freely).

BG_PIDS=()

log() { echo "== $*" >&2; }

# ns_quiet NAME: no IPv6 in the namespace (no router solicitations / MLD noise in the captures)
ns_quiet() {
    ns_exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# ns_ifconf NAME IF MAC [ADDR/LEN]: fixed MAC, address, no TX checksum offload (valid checksums in
# captures; this also turns TSO off), no GSO/GRO (every capture shows wire-sized segments)
ns_ifconf() {
    ns_exec "$1" ip link set "$2" down
    ns_exec "$1" ip link set "$2" address "$3"
    [[ -n ${4:-} ]] && ns_exec "$1" ip addr add "$4" dev "$2"
    ns_exec "$1" ip link set "$2" up
    ns_exec "$1" ethtool -K "$2" tx off gso off gro off >/dev/null 2>&1 || true
}

# ns_neigh NAME IF IP MAC: permanent neighbour entry (no ARP in the captures)
ns_neigh() {
    ns_exec "$1" ip neigh replace "$3" lladdr "$4" dev "$2" nud permanent
}

# bg_start NS READYFILE CMD...: run CMD in the background in NS, wait until it wrote READYFILE
bg_start() {
    local ns=$1 ready=$2; shift 2
    rm -f "$ready"
    # a simple command in the background: $! is the process itself (ip netns exec execs CMD), so
    # bg_stop_all's SIGTERM reaches CMD and not a wrapping subshell
    ip netns exec "$(ns_name "$ns")" "$@" &
    BG_PIDS+=("$!")
    for _ in $(seq 100); do [[ -e $ready ]] && return 0; sleep 0.05; done
    echo "background command did not get ready: $*" >&2
    return 1
}

# bg_wait: wait for every background command (they end by themselves), fail if one failed
bg_wait() {
    local pid rc=0
    for pid in "${BG_PIDS[@]}"; do wait "$pid" || rc=$?; done
    BG_PIDS=()
    return $rc
}

bg_stop_all() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    BG_PIDS=()
}

# save FILE...: move finished files from $WORK to $OUT
save() {
    local f
    for f in "$@"; do
        mv -f "$WORK/$f" "$OUT/$f"
        chown --reference="$OUT" "$OUT/$f"; chmod 644 "$OUT/$f"
    done
}

# cap NS IF FILE [ARGS...]: tcpdump with --immediate-mode -U (ns_capture adds both); ARGS = -s N, filter
cap() {
    local ns=$1 ifc=$2 file=$3; shift 3
    ns_capture "$ns" "$ifc" "$file" "$@"
}

# cap_check FILE...: tcpdump's own drop count must be 0 (else the capture is not the whole truth)
cap_check() {
    local f
    for f in "$@"; do
        if ! grep -q "^0 packets dropped by kernel" "$f.log"; then
            echo "tcpdump dropped packets for $f:" >&2; cat "$f.log" >&2; return 1
        fi
    done
}

# nstat_dump NS FILE: absolute counters of namespace NS (-a absolute, -s no history file: nstat's
# history lives in /tmp and is shared by every namespace, so deltas are computed from two dumps)
nstat_dump() {
    ns_exec "$1" nstat -asz >"$2"
}

F() { "$PY" "$HERE/facts.py" "$@"; }
