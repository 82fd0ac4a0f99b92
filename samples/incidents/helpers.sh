# Extra helpers for samples/incidents/record.sh (on top of samples/lib/netns.sh).

BG_PIDS=()

log() { echo "== $*" >&2; }

# ns_quiet NAME: no IPv6 in the namespace (no router solicitations / MLD noise in the captures)
ns_quiet() {
    ns_exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

# ns_ifconf NAME IF MAC ADDR/LEN: fixed MAC, address, no TX checksum offload (valid checksums in captures)
ns_ifconf() {
    ns_exec "$1" ip link set "$2" down
    ns_exec "$1" ip link set "$2" address "$3"
    ns_exec "$1" ip addr add "$4" dev "$2"
    ns_exec "$1" ip link set "$2" up
    ns_exec "$1" ethtool -K "$2" tx off >/dev/null 2>&1 || true
}

# ns_port NS IF SWNS SWIF BR MAC ADDR/LEN: namespace NS attached to bridge BR (in namespace SWNS)
ns_port() {
    ns_veth "$1" "$2" "$3" "$4"
    ns_exec "$3" ip link set "$4" master "$5"
    ns_exec "$3" ethtool -K "$4" tx off >/dev/null 2>&1 || true
    ns_ifconf "$1" "$2" "$6" "$7"
}

# bg_start NS READYFILE CMD...: run CMD in the background in NS, wait until it wrote READYFILE
bg_start() {
    local ns=$1 ready=$2; shift 2
    rm -f "$ready"
    ns_exec "$ns" "$@" &
    BG_PIDS+=("$!")
    for _ in $(seq 100); do [[ -e $ready ]] && return 0; sleep 0.05; done
    echo "background command did not get ready: $*" >&2
    return 1
}

bg_stop_all() {
    local pid
    for pid in "${BG_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${BG_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    BG_PIDS=()
}

# save FILE...: move finished captures from $WORK to $OUT
save() {
    local f
    for f in "$@"; do
        mv -f "$WORK/$f" "$OUT/$f"
        chown --reference="$OUT" "$OUT/$f"; chmod 644 "$OUT/$f"
    done
}

# ss_snap NS TITLE PORT: a titled `ss -tano` snapshot of the sockets on PORT
ss_snap() {
    echo
    echo "## $2  (t=$(date +%H:%M:%S.%N | cut -c1-12))"
    ns_exec "$1" ss -tano "( sport = :$3 or dport = :$3 )"
}

# cap NS IF FILE [FILTER...]: ns_capture with --immediate-mode. Without it libpcap's TPACKET_V3 ring
# only hands over a block when it fills or its 1 s timeout expires, and ns_capture_stop (0.3 s grace)
# loses the last second of packets.
cap() {
    local ns=$1 ifc=$2 file=$3; shift 3
    ns_capture "$ns" "$ifc" "$file" --immediate-mode "$@"
}
