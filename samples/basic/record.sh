#!/usr/bin/env bash
# Records the small REAL captures in samples/basic/ from real kernels in network namespaces.
# Re-record (as root, from the repository root):   sudo bash samples/basic/record.sh
# Everything (namespaces, processes, temp files) is torn down on exit. Namespaces: psb-*,
# addresses: 10.201.N.0/24 and fd00:201:N::/64.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../lib/netns.sh
source "$HERE/../lib/netns.sh"

PY=${PYTHON:-$(command -v python3)}
PEER="$HERE/tcp_peer.py"
SWITCH="$HERE/vlan_switch.py"
WORK=$(mktemp -d /tmp/psb-record.XXXXXX)
chmod 755 "$WORK"   # tcpdump may drop privileges before opening its output file

ns_init psb
cleanup_all() {
    ns_cleanup
    rm -rf "$WORK"
}
trap cleanup_all EXIT

log() { echo "[record] $*" >&2; }

# ---------------------------------------------------------------------------------------------
# Helpers local to this recorder.

# teardown: remove every namespace of the current scenario (and kill what runs inside).
SWITCH_PIDS=()
teardown() {
    local pid
    for pid in "${SWITCH_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
    SWITCH_PIDS=()
    ns_cleanup
    NS_LIST=()
    NS_CAPTURE_PIDS=()
}

# wait_file FILE: poll until FILE exists (server listening / switch bound), max 10 s.
wait_file() {
    local i
    for i in $(seq 200); do
        [[ -e "$1" ]] && return 0
        sleep 0.05
    done
    log "timeout waiting for $1"; return 1
}

# quiet_ns NAME [v6]: no IPv6 noise (RS/DAD/MLD) on links created afterwards. Without "v6" IPv6 is
# disabled completely; with "v6" it stays on but without DAD, router solicitations or SLAAC.
quiet_ns() {
    local ns=$1
    if [[ "${2:-}" == v6 ]]; then
        ns_exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
            net.ipv6.conf.default.router_solicitations=0 net.ipv6.conf.default.accept_ra=0 \
            net.ipv6.conf.default.addr_gen_mode=1 \
            net.ipv6.conf.all.mldv2_unsolicited_report_interval=1 \
            net.ipv6.conf.default.mldv2_unsolicited_report_interval=1
    else
        ns_exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    fi
}

# no_offload NS IF: compute checksums in software and don't build GSO super-frames, so captured
# frames look like they would on a wire (valid TCP checksums, no frames above the MTU).
no_offload() {
    ns_exec "$1" ethtool -K "$2" tx off tso off gso off gro off >/dev/null 2>&1 || true
}

# pair N [v6]: namespaces a (client) and b (server) joined by veth a0 <-> b0,
# 10.201.N.1/24 <-> 10.201.N.2/24 (or fd00:201:N::1/64 <-> ::2 with v6).
pair() {
    local n=$1 v6=${2:-}
    ns_add a; ns_add b
    quiet_ns a "$v6"; quiet_ns b "$v6"
    ns_veth a a0 b b0
    no_offload a a0; no_offload b b0
    if [[ "$v6" == v6 ]]; then
        ns_exec a ip -6 addr add "fd00:201:$n::1/64" dev a0 nodad
        ns_exec b ip -6 addr add "fd00:201:$n::2/64" dev b0 nodad
    else
        ns_exec a ip addr add "10.201.$n.1/24" dev a0
        ns_exec b ip addr add "10.201.$n.2/24" dev b0
    fi
}

# server NS ADDR PORT [ARGS...]: start tcp_peer.py server in the background, wait until it listens.
# Its pid is appended to SERVER_PIDS.
SERVER_PIDS=()
server() {
    local ns=$1 addr=$2 port=$3; shift 3
    local ready="$WORK/ready.$ns.$port"
    rm -f "$ready"
    ns_exec "$ns" "$PY" "$PEER" server --bind "$addr" --port "$port" --ready-file "$ready" "$@" &
    SERVER_PIDS+=("$!")
    wait_file "$ready"
}

# client NS ADDR PORT [ARGS...]: run tcp_peer.py client in the foreground.
client() {
    local ns=$1 addr=$2 port=$3; shift 3
    ns_exec "$ns" "$PY" "$PEER" client --connect "$addr" --port "$port" "$@"
}

# wait_servers: every server must exit cleanly (it has handled its --count connections).
wait_servers() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do wait "$pid"; done
    SERVER_PIDS=()
}

# dumpcap_start NS FILE IF...: one dumpcap run on several interfaces (pcapng), waits until capturing.
DUMPCAP_PIDS=()
dumpcap_start() {
    local ns=$1 file=$2; shift 2
    local args=() ifc i
    for ifc in "$@"; do args+=(-i "$ifc"); done
    ns_exec "$ns" dumpcap -q "${args[@]}" -w "$file" 2>"$file.log" &
    DUMPCAP_PIDS+=("$!")
    for i in $(seq 200); do
        grep -q "^File:" "$file.log" 2>/dev/null && break
        sleep 0.05
    done
    sleep 0.3
}
dumpcap_stop() {
    local pid
    # dumpcap has no immediate mode: packets wait in libpcap's ring until a block times out, and
    # whatever is still there at SIGTERM is lost. 1.5 s is well above that timeout.
    sleep 1.5
    # SIGTERM, not SIGINT: background jobs of a non-interactive shell ignore SIGINT, and dumpcap
    # keeps it ignored.
    for pid in "${DUMPCAP_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${DUMPCAP_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    DUMPCAP_PIDS=()
}

# cap NS IF FILE [ARGS...]: ns_capture with --immediate-mode. Without it libpcap's TPACKET_V3 ring
# hands packets over only when a block fills or its 1 s timeout expires, and the SIGINT from
# ns_capture_stop (0.3 s after the traffic) loses everything still in the ring.
cap() {
    local ns=$1 ifc=$2 file=$3; shift 3
    ns_capture "$ns" "$ifc" "$file" --immediate-mode "$@"
}

# publish FILE...: copy finished captures from the work dir into samples/basic/.
publish() {
    local f
    for f in "$@"; do
        install -m 0644 "$WORK/$f" "$HERE/$f"
        log "wrote $f ($(stat -c %s "$HERE/$f") bytes)"
    done
}

# ---------------------------------------------------------------------------------------------
# Scenarios.

# 1. clean-ethernet.pcap: 1 connection over a veth, tcpdump on the server's veth (EN10MB, usec).
rec_clean_ethernet() {
    pair 1
    server b 10.201.1.2 8080 --req-size 300 --resp-size 500
    cap b b0 "$WORK/clean-ethernet.pcap"
    client a 10.201.1.2 8080 --src-port 40001 --req-size 300 --resp-size 500
    wait_servers
    ns_capture_stop
    teardown
    publish clean-ethernet.pcap
}

# 2. any-sll.pcap + any-sll2.pcap: the same traffic, two tcpdumps on "any" in the server namespace.
rec_any() {
    pair 2
    server b 10.201.2.2 8080 --req-size 300 --resp-size 500
    cap b any "$WORK/any-sll.pcap" -y LINUX_SLL
    cap b any "$WORK/any-sll2.pcap" -y LINUX_SLL2
    client a 10.201.2.2 8080 --src-port 40001 --req-size 300 --resp-size 500
    wait_servers
    ns_capture_stop
    teardown
    publish any-sll.pcap any-sll2.pcap
}

# 3. two-interfaces.pcapng: one dumpcap on lo and b0 in namespace b; 2 connections over the veth
#    (a -> b:8080) and 2 over loopback (b -> 127.0.0.1:8081) running in lock-step, the loopback
#    client 50 ms ahead, so the packets of the two interfaces alternate in the file.
rec_two_interfaces() {
    pair 3
    # (lo's tx checksum offload is [fixed] on: its TCP checksums stay unfilled in the capture.)
    server b 10.201.3.2 8080 --count 2 --req-size 300 --resp-size 500
    server b 127.0.0.1 8081 --count 2 --req-size 200 --resp-size 400
    dumpcap_start b "$WORK/two-interfaces.pcapng" lo b0
    local t0 c1
    t0=$(date +%s)   # clients start at t0 / t0+50 ms, 1-2 s from now
    t0=$((t0 + 2))
    client a 10.201.3.2 8080 --count 2 --src-port 40001 --req-size 300 --resp-size 500 \
        --start-at "$t0.05" --think 0.1 --hold 0.1 --gap 0.1 &
    c1=$!
    client b 127.0.0.1 8081 --count 2 --src-port 41001 --req-size 200 --resp-size 400 \
        --start-at "$t0.00" --think 0.1 --hold 0.1 --gap 0.1
    wait "$c1"
    wait_servers
    dumpcap_stop
    teardown
    publish two-interfaces.pcapng
}

# 4. ipv6.pcap: 1 connection over IPv6 (nodad addresses), tcpdump on the server's veth.
rec_ipv6() {
    pair 4 v6
    server b fd00:201:4::2 8080 --req-size 300 --resp-size 500
    cap b b0 "$WORK/ipv6.pcap"
    client a fd00:201:4::2 8080 --src-port 40001 --req-size 300 --resp-size 500
    wait_servers
    ns_capture_stop
    teardown
    publish ipv6.pcap
}

# 5. vlan.pcap / qinq.pcap: in each namespace the host interface hN is veth-paired with a switch
#    port sN; vlan_switch.py bridges sN to the trunk veth tN, tagging frames towards the trunk and
#    untagging frames from it. tcpdump on the trunk ta (namespace a) sees tagged frames both ways.
#    $1=N (subnet), $2=file, $3...=tags (outermost first)
rec_tagged() {
    local n=$1 file=$2; shift 2
    local tagargs=() t ns
    for t in "$@"; do tagargs+=(--tag "$t"); done
    ns_add a; ns_add b
    quiet_ns a; quiet_ns b
    ns_veth a ta b tb
    for ns in a b; do
        ns_veth "$ns" "h$ns" "$ns" "s$ns"
        no_offload "$ns" "h$ns"; no_offload "$ns" "s$ns"; no_offload "$ns" "t$ns"
    done
    for ns in a b; do
        ns_exec "$ns" "$PY" "$SWITCH" --access "s$ns" --trunk "t$ns" "${tagargs[@]}" \
            --ready-file "$WORK/ready.switch.$ns" &
        SWITCH_PIDS+=("$!")
        wait_file "$WORK/ready.switch.$ns"
    done
    ns_exec a ip addr add "10.201.$n.1/24" dev ha
    ns_exec b ip addr add "10.201.$n.2/24" dev hb
    server b "10.201.$n.2" 8080 --req-size 300 --resp-size 500
    cap a ta "$WORK/$file"
    client a "10.201.$n.2" 8080 --src-port 40001 --req-size 300 --resp-size 500
    wait_servers
    ns_capture_stop
    teardown
    publish "$file"
}

# 6. nanosecond.pcap: like 1, tcpdump --time-stamp-precision=nano (magic a1b23c4d).
rec_nanosecond() {
    pair 6
    server b 10.201.6.2 8080 --req-size 300 --resp-size 500
    cap b b0 "$WORK/nanosecond.pcap" --time-stamp-precision=nano
    client a 10.201.6.2 8080 --src-port 40001 --req-size 300 --resp-size 500
    wait_servers
    ns_capture_stop
    teardown
    publish nanosecond.pcap
}

# 8. snaplen-cut.pcap: 4000-byte request, 6000-byte response, tcpdump -s 96.
rec_snaplen() {
    pair 8
    server b 10.201.8.2 8080 --req-size 4000 --resp-size 6000
    cap b b0 "$WORK/snaplen-cut.pcap" -s 96
    client a 10.201.8.2 8080 --src-port 40001 --req-size 4000 --resp-size 6000
    wait_servers
    ns_capture_stop
    teardown
    publish snaplen-cut.pcap
}

# 9. ipv6-ext.pcap: IPv6 with extension headers set by socket options: the client's segments carry
#    Hop-by-Hop Options + Destination Options, the server's carry Destination Options.
rec_ipv6_ext() {
    pair 9 v6
    server b fd00:201:9::2 8080 --req-size 300 --resp-size 500 --dstopts
    cap b b0 "$WORK/ipv6-ext.pcap"
    client a fd00:201:9::2 8080 --src-port 40001 --req-size 300 --resp-size 500 --hopopts --dstopts
    wait_servers
    ns_capture_stop
    teardown
    publish ipv6-ext.pcap
}

# 7. gzipped.pcap.gz / gzipped-noext.cap: gzip -9 -n of clean-ethernet.pcap, same bytes twice.
make_gzip() {
    gzip -9 -n -c "$HERE/clean-ethernet.pcap" >"$HERE/gzipped.pcap.gz"
    cp "$HERE/gzipped.pcap.gz" "$HERE/gzipped-noext.cap"
    chmod 0644 "$HERE/gzipped.pcap.gz" "$HERE/gzipped-noext.cap"
    log "wrote gzipped.pcap.gz, gzipped-noext.cap"
}

[[ $(id -u) == 0 ]] || { echo "must run as root: sudo bash samples/basic/record.sh" >&2; exit 1; }

rec_clean_ethernet
rec_any
rec_two_interfaces
rec_ipv6
rec_tagged 5 vlan.pcap 8100:42
rec_tagged 7 qinq.pcap 88a8:100 8100:200
rec_nanosecond
rec_snaplen
rec_ipv6_ext
make_gzip
log "done"
