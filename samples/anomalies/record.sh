#!/usr/bin/env bash
# Re-record every TCP anomaly capture of samples/anomalies/ (see README.md there).
#   sudo bash samples/anomalies/record.sh            # everything (~1 minute)
#   sudo bash samples/anomalies/record.sh lossy ...  # only the named scenarios
# Scenarios: lossy stalled resets keepalive portscan synflood simopen timewait
# Needs root, iproute2, iptables, ethtool, tcpdump, tshark, python3 (stdlib only).
# All traffic stays inside network namespaces psa-* (subnets 10.203.x.x). Idempotent: namespaces of a
# previous (interrupted) run are deleted first, and all of them are deleted on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE"
# shellcheck source=../lib/netns.sh
source "$HERE/../lib/netns.sh"
# shellcheck source=helpers.sh
source "$HERE/helpers.sh"

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ next to the committed files
WORK=$(mktemp -d /tmp/psa-record.XXXXXX)
chmod 755 "$WORK"

ns_init psa
trap 'bg_stop_all; ns_cleanup; rm -rf "$WORK"' EXIT
for ns in $(ip netns list | awk '$1 ~ /^psa-/ {print $1}'); do ip netns del "$ns"; done

# MACs 02:00:0a:cb:<subnet>:<host> (0a:cb = 10.203): the last two bytes repeat the IPv4 address
mac() { printf '02:00:0a:cb:%02x:%02x' "$1" "$2"; }

# pair A B SUBNET: namespaces A (10.203.SUBNET.1) and B (10.203.SUBNET.2) joined by a veth (eth0 each),
# fixed MACs, permanent neighbour entries, no IPv6
pair() {
    local a=$1 b=$2 n=$3
    ns_add "$a"; ns_quiet "$a"; ns_add "$b"; ns_quiet "$b"
    ns_veth "$a" eth0 "$b" eth0
    ns_ifconf "$a" eth0 "$(mac "$n" 1)" "10.203.$n.1/24"
    ns_ifconf "$b" eth0 "$(mac "$n" 2)" "10.203.$n.2/24"
    ns_neigh "$a" eth0 "10.203.$n.2" "$(mac "$n" 2)"
    ns_neigh "$b" eth0 "10.203.$n.1" "$(mac "$n" 1)"
}

# kernel_facts FACTS NS...: the sysctls these scenarios depend on, per namespace
kernel_facts() {
    local fx=$1 ns k v json; shift
    for ns in "$@"; do
        json="{"
        for k in tcp_congestion_control tcp_timestamps tcp_sack tcp_window_scaling tcp_syncookies \
                 tcp_synack_retries tcp_syn_retries tcp_invalid_ratelimit tcp_rfc1337 tcp_fin_timeout \
                 tcp_max_syn_backlog tcp_keepalive_time tcp_rmem tcp_wmem; do
            v=$(ns_exec "$ns" cat /proc/sys/net/ipv4/$k | tr '\t' ' ')
            json+="\"$k\": \"$v\", "
        done
        json+="\"somaxconn\": \"$(ns_exec "$ns" cat /proc/sys/net/core/somaxconn)\"}"
        F put "$fx" "kernel.psa-$ns" "$json"
    done
}

# nstat_both FACTS STEP: STEP 0 = dump the counters of psa-c and psa-s; STEP 1 = store the deltas
nstat_both() {
    local ns
    for ns in c s; do
        nstat_dump $ns "$WORK/$ns.nstat$2"
        [[ $2 == 1 ]] && F nstat "$1" "nstat_delta.psa-$ns" "$WORK/$ns.nstat0" "$WORK/$ns.nstat1"
    done
    return 0
}

# finish FACTS PCAP...: stdlib summary of every capture into the facts file, tcpdump drop check
finish() {
    local facts=$1 p; shift
    for p in "$@"; do
        cap_check "$WORK/$p"
        "$PY" "$HERE/pcapcheck.py" summary "$WORK/$facts" "$WORK/$p"
    done
    F put "$WORK/$facts" recorded "\"$(date -u +%Y-%m-%dT%H:%M:%SZ) on Linux $(uname -r)\""
    save "$facts" "$@"
}

# ---------------------------------------------------------------------------------------------
# 1. lossy-client.pcap / lossy-server.pcap: deterministic loss in a router, seen from both sides
# ---------------------------------------------------------------------------------------------
rec_lossy() {
    local CLI=10.203.1.1 SRV=10.203.2.1 PORT=5001 SPORT=40001 EVERY=40 FX="$WORK/lossy.facts.json"
    log "lossy: client $CLI:$SPORT -> router (drops every ${EVERY}th data packet) -> server $SRV:$PORT"
    ns_add lc; ns_quiet lc; ns_add lr; ns_quiet lr; ns_add ls; ns_quiet ls
    ns_veth lc eth0 lr eth0
    ns_veth lr eth1 ls eth0
    ns_ifconf lc eth0 "$(mac 1 1)" $CLI/24
    ns_ifconf lr eth0 "$(mac 1 254)" 10.203.1.254/24
    ns_ifconf lr eth1 "$(mac 2 254)" 10.203.2.254/24
    ns_ifconf ls eth0 "$(mac 2 1)" $SRV/24
    ns_exec lc ip route add default via 10.203.1.254
    ns_exec ls ip route add default via 10.203.2.254
    ns_exec lr sysctl -qw net.ipv4.ip_forward=1
    ns_neigh lc eth0 10.203.1.254 "$(mac 1 254)"
    ns_neigh lr eth0 $CLI "$(mac 1 1)"
    ns_neigh lr eth1 $SRV "$(mac 2 1)"
    ns_neigh ls eth0 10.203.2.254 "$(mac 2 254)"
    # Only this connection's client->server segments that carry payload: SYN and RST excluded by
    # --tcp-flags, and IP total length >= 53 (timestamps are on, so every non-SYN segment has a 32-byte
    # TCP header: a segment without payload is exactly 52 bytes long). nth = deterministic.
    ns_exec lr iptables -A FORWARD -i eth0 -o eth1 -p tcp -s $CLI --sport $SPORT -d $SRV --dport $PORT \
        --tcp-flags SYN,RST NONE -m length --length 53:65535 \
        -m statistic --mode nth --every $EVERY --packet 0 -m comment --comment psa-lossy-drop -j DROP

    bg_start ls "$WORK/ls.ready" "$PY" "$HERE/bulk.py" server --bind $SRV --port $PORT \
        --facts "$WORK/lossy-server.json" --ready-file "$WORK/ls.ready"
    cap lc eth0 "$WORK/lossy-client.pcap" -s 128
    cap ls eth0 "$WORK/lossy-server.pcap" -s 128
    nstat_dump lc "$WORK/lc.nstat0"
    nstat_dump ls "$WORK/ls.nstat0"
    ns_exec lc "$PY" "$HERE/bulk.py" client --dst $SRV --port $PORT --sport $SPORT --bytes 1500000 \
        --pacing 2500000 --facts "$WORK/lossy-client.json"
    bg_wait
    nstat_dump lc "$WORK/lc.nstat1"
    nstat_dump ls "$WORK/ls.nstat1"
    ns_capture_stop
    ns_exec lr iptables -L FORWARD -v -x -n >"$WORK/lr.iptables"
    ns_exec lr iptables -S FORWARD | grep psa-lossy-drop >"$WORK/lr.rule"

    rm -f "$FX"
    F put "$FX" scenario '"1.5 MB client->server through a router that drops every 40th payload-carrying client->server segment of the connection (iptables statistic nth); captured before (client eth0) and after (server eth0) the router at the same time"'
    F merge "$FX" client "$WORK/lossy-client.json"
    F merge "$FX" server "$WORK/lossy-server.json"
    F iptables "$FX" iptables "$WORK/lr.iptables" psa-lossy-drop
    F put "$FX" iptables.rule "$("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "iptables $(cat "$WORK/lr.rule")")"
    F put "$FX" iptables.command '"iptables -L FORWARD -v -x -n (namespace psa-lr, after the transfer)"'
    F nstat "$FX" nstat_delta.psa-lc "$WORK/lc.nstat0" "$WORK/lc.nstat1"
    F nstat "$FX" nstat_delta.psa-ls "$WORK/ls.nstat0" "$WORK/ls.nstat1"
    F put "$FX" capture_points '{"lossy-client.pcap": "client eth0 (namespace psa-lc), before the router", "lossy-server.pcap": "server eth0 (namespace psa-ls), after the router"}'
    "$PY" "$HERE/pcapcheck.py" lossy "$FX" "$WORK/lossy-client.pcap" "$WORK/lossy-server.pcap" $SRV $PORT
    F tshark "$FX" client_retransmission "$WORK/lossy-client.pcap" "tcp.analysis.retransmission"
    F tshark "$FX" client_fast_retransmission "$WORK/lossy-client.pcap" "tcp.analysis.fast_retransmission"
    F tshark "$FX" server_retransmission "$WORK/lossy-server.pcap" "tcp.analysis.retransmission"
    F tshark "$FX" server_out_of_order "$WORK/lossy-server.pcap" "tcp.analysis.out_of_order"
    F tshark "$FX" server_lost_segment "$WORK/lossy-server.pcap" "tcp.analysis.lost_segment"
    F tshark "$FX" server_dup_ack "$WORK/lossy-server.pcap" "tcp.analysis.duplicate_ack"
    F tshark "$FX" client_dup_ack "$WORK/lossy-client.pcap" "tcp.analysis.duplicate_ack"
    F tshark "$FX" server_sack "$WORK/lossy-server.pcap" "tcp.options.sack_le"
    # the headline numbers, flat (tests assert against these)
    F copy "$FX" dropped iptables.drop_rule_packets
    F copy "$FX" missing_at_server capture_match.missing_at_server
    F copy "$FX" sender_total_retrans client.tcp_info_before_close.total_retrans
    F copy "$FX" sender_bytes_retrans client.tcp_info_before_close.bytes_retrans
    F copy "$FX" nstat_TcpRetransSegs_delta nstat_delta.psa-lc.TcpRetransSegs 0
    F copy "$FX" bytes_sent client.bytes_sent
    F copy "$FX" bytes_received server.bytes_received
    F copy "$FX" four_tuple client.four_tuple
    kernel_facts "$FX" lc lr ls
    "$PY" - "$FX" <<'EOF'
import json, sys
p = sys.argv[1]
f = json.load(open(p))
m = f["capture_match"]
f["ttl_decrement"] = m["ttl_client_side"][0] - m["ttl_server_side"][0]
assert len(m["ttl_client_side"]) == 1 and len(m["ttl_server_side"]) == 1, m
json.dump(f, open(p, "w"), indent=2, sort_keys=True)
open(p, "a").write("\n")
EOF
    finish lossy.facts.json lossy-client.pcap lossy-server.pcap
}

# client (psa-c, 10.203.3.1) <-veth-> server (psa-s, 10.203.3.2): scenarios 2-6 and 8
C=10.203.3.1
S=10.203.3.2
ensure_cs() { [[ -e /run/netns/psa-c && -e /run/netns/psa-s ]] || pair c s 3; }

# ---------------------------------------------------------------------------------------------
# 2. stalled-reader.pcap: tiny receive buffer, reader asleep -> zero window, zero-window probes
# ---------------------------------------------------------------------------------------------
rec_stalled() {
    local PORT=5002 FX="$WORK/stalled-reader.facts.json"
    ensure_cs
    log "stalled-reader: server $S:$PORT SO_RCVBUF=4096, does not read for 6 s; client writes 300 KB"
    bg_start s "$WORK/s.ready" "$PY" "$HERE/bulk.py" server --bind $S --port $PORT --rcvbuf 4096 \
        --stall 6 --ss-at 3 --facts "$WORK/stalled-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$WORK/stalled-reader.pcap" -s 128
    rm -f "$FX"
    nstat_both "$FX" 0
    ns_exec c "$PY" "$HERE/bulk.py" client --dst $S --port $PORT --bytes 300000 --facts "$WORK/stalled-client.json"
    bg_wait
    nstat_both "$FX" 1
    ns_capture_stop
    F put "$FX" scenario '"server with SO_RCVBUF=4096 (set before listen) accepts and sleeps 6 s without reading while the client writes 300000 bytes; then it reads everything, answers, both close with FIN. Captured on the client eth0 (psa-c)."'
    F merge "$FX" client "$WORK/stalled-client.json"
    F merge "$FX" server "$WORK/stalled-server.json"
    "$PY" "$HERE/pcapcheck.py" zerowindow "$FX" "$WORK/stalled-reader.pcap" $S $PORT
    F tshark "$FX" zero_window "$WORK/stalled-reader.pcap" "tcp.analysis.zero_window"
    F tshark "$FX" zero_window_probe "$WORK/stalled-reader.pcap" "tcp.analysis.zero_window_probe"
    F tshark "$FX" zero_window_probe_ack "$WORK/stalled-reader.pcap" "tcp.analysis.zero_window_probe_ack"
    F tshark "$FX" keep_alive "$WORK/stalled-reader.pcap" "tcp.analysis.keep_alive"
    F tshark "$FX" keep_alive_ack "$WORK/stalled-reader.pcap" "tcp.analysis.keep_alive_ack"
    F tshark "$FX" window_full "$WORK/stalled-reader.pcap" "tcp.analysis.window_full"
    F tshark "$FX" window_update "$WORK/stalled-reader.pcap" "tcp.analysis.window_update"
    F tshark "$FX" retransmission "$WORK/stalled-reader.pcap" "tcp.analysis.retransmission"
    F copy "$FX" bytes_sent client.bytes_sent
    F copy "$FX" bytes_received server.bytes_received
    F copy "$FX" stall_seconds server.stall_seconds
    F copy "$FX" zero_window_segments zero_window_check.zero_window_segments
    F copy "$FX" zero_window_probes zero_window_check.probes
    F copy "$FX" nstat_TcpExtTCPWinProbe_delta nstat_delta.psa-c.TcpExtTCPWinProbe 0
    F copy "$FX" ss_tmi_while_stalled server.ss_tmi_while_stalled
    F copy "$FX" server_TcpExtTCPACKSkippedSeq_delta nstat_delta.psa-s.TcpExtTCPACKSkippedSeq 0
    kernel_facts "$FX" c s
    finish stalled-reader.facts.json stalled-reader.pcap
}

# ---------------------------------------------------------------------------------------------
# 3-5. reset-unread.pcap, reset-linger0.pcap, keepalive.pcap: sessions.py on the c/s pair
# ---------------------------------------------------------------------------------------------
# session SCENARIO PORT NAME DESCRIPTION [CLIENT ARGS...]: run sessions.py SCENARIO, capture NAME.pcap
# on the client eth0, start NAME.facts.json with both sides' facts and both namespaces' nstat deltas
session() {
    local scen=$1 port=$2 name=$3 desc=$4 FX="$WORK/$3.facts.json"; shift 4
    ensure_cs
    log "$name: sessions.py $scen, server $S:$port"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "$PY" "$HERE/sessions.py" "$scen" server --bind $S --port "$port" \
        --facts "$WORK/$name-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$WORK/$name.pcap"
    nstat_both "$FX" 0
    ns_exec c "$PY" "$HERE/sessions.py" "$scen" client --dst $S --port "$port" --facts "$WORK/$name-client.json" "$@"
    bg_wait
    nstat_both "$FX" 1
    ns_capture_stop
    F put "$FX" scenario "$("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$desc")"
    F put "$FX" capture_point '"client eth0 (namespace psa-c, 10.203.3.1); server psa-s 10.203.3.2"'
    F merge "$FX" client "$WORK/$name-client.json"
    F merge "$FX" server "$WORK/$name-server.json"
    F copy "$FX" four_tuple client.four_tuple
    kernel_facts "$FX" c s
}

rec_resets() {
    local FX="$WORK/reset-unread.facts.json" P="$WORK/reset-unread.pcap"
    session unread 5003 reset-unread "client sends 20000 bytes; the server sleeps 0.3 s, reads 100 bytes, writes a 413 reply and close()s with 19900 bytes unread -> RST instead of FIN (RFC 2525 2.17). The client then logs recv()/send() results."
    F tshark "$FX" rst "$P" "tcp.flags.reset==1"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1"
    F tshark "$FX" server_data "$P" "tcp.srcport==5003 && tcp.len>0"
    F copy "$FX" rst_frames tshark.rst.frames
    F copy "$FX" server_unread_bytes_at_close server.unread_bytes_at_close
    F copy "$FX" client_calls client.calls
    F copy "$FX" client_first_error client.calls.1.error
    finish reset-unread.facts.json reset-unread.pcap

    FX="$WORK/reset-linger0.facts.json" P="$WORK/reset-linger0.pcap"
    session linger0 5004 reset-linger0 "3 request/response rounds; the server reads request 4, sets SO_LINGER {l_onoff=1, l_linger=0} and close()s -> RST (abortive close, no FIN). The client, waiting for response 4, logs the errno."
    F tshark "$FX" rst "$P" "tcp.flags.reset==1"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1"
    F copy "$FX" rst_frames tshark.rst.frames
    F copy "$FX" client_calls client.calls
    F copy "$FX" client_first_error client.calls.0.error
    finish reset-linger0.facts.json reset-linger0.pcap
}

rec_keepalive() {
    local FX="$WORK/keepalive.facts.json" P="$WORK/keepalive.pcap"
    session keepalive 5005 keepalive "client with SO_KEEPALIVE=1, TCP_KEEPIDLE=1, TCP_KEEPINTVL=1, TCP_KEEPCNT=5 does one request/response, is idle 4.5 s (keep-alive probes every ~1 s, each ACKed by the server), then closes with FIN." --idle 4.5
    F tshark "$FX" keep_alive "$P" "tcp.analysis.keep_alive"
    F tshark "$FX" keep_alive_ack "$P" "tcp.analysis.keep_alive_ack"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1"
    F copy "$FX" keepalive_probes tshark.keep_alive.count
    F copy "$FX" keepalive_probe_frames tshark.keep_alive.frames
    F copy "$FX" keepalive_ack_frames tshark.keep_alive_ack.frames
    F copy "$FX" nstat_TcpExtTCPKeepAlive_delta nstat_delta.psa-c.TcpExtTCPKeepAlive 0
    finish keepalive.facts.json keepalive.pcap
}

# ---------------------------------------------------------------------------------------------
# 6a. portscan.pcap: one source, connect() to ports 1-200, five of them listening
# ---------------------------------------------------------------------------------------------
OPEN_PORTS=22,25,80,110,143
rec_portscan() {
    local FX="$WORK/portscan.facts.json" P="$WORK/portscan.pcap"
    ensure_cs
    log "portscan: $C connect()s to $S ports 1-200 (listening: $OPEN_PORTS)"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "$PY" "$HERE/scan.py" listen --bind $S --ports $OPEN_PORTS --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_both "$FX" 0
    ns_exec c "$PY" "$HERE/scan.py" connect-scan --dst $S --first 1 --last 200 --facts "$WORK/scan.json"
    sleep 0.2
    nstat_both "$FX" 1
    ns_capture_stop
    bg_stop_all
    F put "$FX" scenario '"connect() scan from 10.203.3.1: one blocking connect() per port 1..200 in order, 2 ms apart, each from a new ephemeral source port; the server listens on 22,25,80,110,143 (accepts and closes at once), every other port answers RST,ACK. Captured on the client eth0."'
    F merge "$FX" scanner "$WORK/scan.json"
    F put "$FX" listening_ports "[$OPEN_PORTS]"
    "$PY" "$HERE/pcapcheck.py" portscan "$FX" "$P" $C
    F tshark "$FX" syn "$P" "tcp.flags.syn==1 && tcp.flags.ack==0"
    F tshark "$FX" synack "$P" "tcp.flags.syn==1 && tcp.flags.ack==1" tcp.srcport
    F tshark "$FX" rst "$P" "tcp.flags.reset==1"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1"
    F copy "$FX" ports_probed scan_check.ports_probed
    F copy "$FX" open_ports scan_check.ports_answered_synack
    F copy "$FX" refused_ports scan_check.ports_answered_rst
    F copy "$FX" syn_count tshark.syn.count
    F copy "$FX" rst_count tshark.rst.count
    kernel_facts "$FX" c s
    finish portscan.facts.json portscan.pcap
}

# ---------------------------------------------------------------------------------------------
# 6b. synflood.pcap: 300 spoofed SYNs to a listener with a small backlog that never accepts
# ---------------------------------------------------------------------------------------------
rec_synflood() {
    local FX="$WORK/synflood.facts.json" P="$WORK/synflood.pcap" PORT=5006 BACKLOG=16
    ensure_cs
    log "synflood: 300 SYNs from spoofed 10.203.8.0/23 to $S:$PORT (listen($BACKLOG), no accept())"
    rm -f "$FX"
    # the SYN-ACKs to the spoofed sources go back to the client's MAC, whose kernel (not a router)
    # silently drops them: nobody ever ACKs or RSTs them
    ns_exec s ip route replace 10.203.8.0/23 via $C
    bg_start s "$WORK/s.ready" "$PY" "$HERE/scan.py" listen --bind $S --ports $PORT --backlog $BACKLOG \
        --noaccept --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_both "$FX" 0
    ns_exec c "$PY" "$HERE/scan.py" synflood --dst $S --port $PORT --count 300 --src-net 10.203.8.0/23 \
        --seed 5 --rate 1000 --facts "$WORK/flood.json"
    ns_exec s ss -ltn "( sport = :$PORT )" >"$WORK/flood.ss-l"
    ns_exec s ss -tan state syn-recv "( sport = :$PORT )" | tail -n +2 | wc -l >"$WORK/flood.synrecv"
    sleep 3.6   # SYN-ACK retransmissions at ~1 s and ~3 s after each SYN
    nstat_both "$FX" 1
    ns_capture_stop
    bg_stop_all
    F put "$FX" scenario '"raw-socket SYN flood: 300 bare SYNs (MSS option only) from 300 random spoofed addresses of 10.203.8.0/23 (seeded) at 1000/s to 10.203.3.2:5006, where a listener with listen(16) never accepts; tcp_syncookies=1. The SYN-ACKs are routed back to the sender host, which drops them. Captured on the sender eth0 for 3.6 s after the last SYN."'
    F merge "$FX" sender "$WORK/flood.json"
    F put "$FX" listen_backlog $BACKLOG
    F text "$FX" ss_listen_after_flood "$WORK/flood.ss-l"
    F put "$FX" syn_recv_sockets_after_flood "$(cat "$WORK/flood.synrecv")"
    "$PY" "$HERE/pcapcheck.py" synflood "$FX" "$P" $S $PORT
    F tshark "$FX" syn "$P" "tcp.flags.syn==1 && tcp.flags.ack==0"
    F tshark "$FX" synack "$P" "tcp.flags.syn==1 && tcp.flags.ack==1"
    F tshark "$FX" synack_retransmission "$P" "tcp.flags.syn==1 && tcp.flags.ack==1 && tcp.analysis.retransmission"
    F copy "$FX" syn_count flood_check.syns
    F copy "$FX" synack_count flood_check.synacks
    F copy "$FX" flows_with_synack_retransmitted flood_check.flows_with_synack_retransmitted
    F copy "$FX" nstat_server_SyncookiesSent nstat_delta.psa-s.TcpExtSyncookiesSent 0
    F copy "$FX" nstat_server_ListenDrops nstat_delta.psa-s.TcpExtListenDrops 0
    kernel_facts "$FX" c s
    finish synflood.facts.json synflood.pcap
}

# ---------------------------------------------------------------------------------------------
# 7. simultaneous-open.pcap: two connect()s to each other, SYNs crossing on a 100 ms delay line
# ---------------------------------------------------------------------------------------------
rec_simopen() {
    local FX="$WORK/simultaneous-open.facts.json" P="$WORK/simultaneous-open.pcap" A=10.203.4.1 B=10.203.4.2
    local attempt ok=0 at pid
    log "simultaneous-open: $A:7001 <-> $B:7002 through relay.py (100 ms each way), both connect() at once"
    ns_add a; ns_quiet a; ns_add m; ns_quiet m; ns_add b; ns_quiet b
    ns_veth a eth0 m pa
    ns_veth m pb b eth0
    ns_ifconf a eth0 "$(mac 4 1)" $A/24
    ns_ifconf b eth0 "$(mac 4 2)" $B/24
    ns_ifconf m pa "$(mac 4 101)"
    ns_ifconf m pb "$(mac 4 102)"
    ns_neigh a eth0 $B "$(mac 4 2)"
    ns_neigh b eth0 $A "$(mac 4 1)"
    for attempt in 1 2 3; do
        rm -f "$FX"
        bg_start m "$WORK/m.ready" "$PY" "$HERE/relay.py" --a pa --b pb --delay 0.1 \
            --facts "$WORK/relay.json" --ready-file "$WORK/m.ready"
        cap a eth0 "$P"
        at=$("$PY" -c 'import time; print("%.3f" % (time.time() + 0.5))')
        ns_exec a "$PY" "$HERE/simopen.py" --bind $A --port 7001 --peer $B --peer-port 7002 --at "$at" \
            --role a --facts "$WORK/simopen-a.json" &
        pid=$!
        ns_exec b "$PY" "$HERE/simopen.py" --bind $B --port 7002 --peer $A --peer-port 7001 --at "$at" \
            --role b --facts "$WORK/simopen-b.json"
        wait $pid
        sleep 0.3
        ns_capture_stop
        bg_stop_all
        F put "$FX" attempt $attempt
        F merge "$FX" side_a "$WORK/simopen-a.json"
        F merge "$FX" side_b "$WORK/simopen-b.json"
        F merge "$FX" relay "$WORK/relay.json"
        F tshark "$FX" syn "$P" "tcp.flags.syn==1 && tcp.flags.ack==0" ip.src
        F tshark "$FX" synack "$P" "tcp.flags.syn==1 && tcp.flags.ack==1" ip.src
        F tshark "$FX" rst "$P" "tcp.flags.reset==1"
        F tshark "$FX" fin "$P" "tcp.flags.fin==1" ip.src
        if "$PY" - "$FX" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
t = f["tshark"]
ok = (f["side_a"]["connect"] == f["side_b"]["connect"] == "OK" and t["syn"]["count"] == 2 and
      sorted(t["syn"]["values"]) == ["10.203.4.1", "10.203.4.2"] and t["synack"]["count"] == 2 and
      sorted(t["synack"]["values"]) == ["10.203.4.1", "10.203.4.2"] and t["rst"]["count"] == 0)
f["simultaneous_open_observed"] = ok
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
sys.exit(0 if ok else 1)
EOF
        then ok=1; break; fi
        log "simultaneous-open: attempt $attempt did not cross, retrying"
    done
    [[ $ok == 1 ]] || { log "simultaneous-open: no simultaneous open in 3 attempts"; return 1; }
    F put "$FX" scenario '"A (10.203.4.1:7001) and B (10.203.4.2:7002) both bind their port and connect() to each other at the same wall-clock time; neither listens. Between them relay.py (namespace psa-m) repeats every frame 100 ms later, so the two SYNs cross in flight. Both kernels go SYN-SENT -> SYN-RECEIVED on the peer SYN and answer SYN,ACK. After connecting each side sends a greeting; A closes first. Captured on A eth0."'
    F put "$FX" capture_point '"A eth0 (namespace psa-a)"'
    F copy "$FX" syn_frames tshark.syn.frames
    F copy "$FX" synack_frames tshark.synack.frames
    kernel_facts "$FX" a b
    finish simultaneous-open.facts.json simultaneous-open.pcap
}

# ---------------------------------------------------------------------------------------------
# 8. timewait-reuse.pcap, timewait-reuse-nots.pcap: a SYN for a 4-tuple the server holds in TIME-WAIT
# ---------------------------------------------------------------------------------------------
# tw_variant NAME PORT SPORT TIMESTAMPS DESCRIPTION
tw_variant() {
    local name=$1 port=$2 sport=$3 ts=$4 desc=$5 FX="$WORK/$1.facts.json" P="$WORK/$1.pcap" attempt
    ensure_cs
    ns_exec c sysctl -qw net.ipv4.tcp_timestamps="$ts"
    for attempt in 1 2 3; do
        log "$name: client $C:$sport (tcp_timestamps=$ts) -> $S:$port, 2 MB, server closes first, reconnect"
        rm -f "$FX"
        # both ends pinned to CPU 0: with the sender's segments coming from two CPUs, veth hands them
        # to two per-CPU backlogs and the receiver sees them reordered (SACK dup ACKs in the capture)
        bg_start s "$WORK/s.ready" taskset -c 0 "$PY" "$HERE/twreuse.py" server --bind $S --port "$port" \
            --facts "$WORK/$name-server.json" --ready-file "$WORK/s.ready"
        cap c eth0 "$P" -s 128 tcp port "$port"
        nstat_both "$FX" 0
        ns_exec c taskset -c 0 "$PY" "$HERE/twreuse.py" client --src $C --dst $S --port "$port" --sport "$sport" \
            --bytes 2000000 --bytes-later 100 --gap 0.03 --facts "$WORK/$name-client.json"
        bg_wait
        nstat_both "$FX" 1
        ns_capture_stop
        F put "$FX" attempt $attempt
        F merge "$FX" client "$WORK/$name-client.json"
        F merge "$FX" server "$WORK/$name-server.json"
        "$PY" "$HERE/pcapcheck.py" timewait "$FX" "$P" $C "$port"
        if "$PY" -c 'import json,sys; sys.exit(json.load(open(sys.argv[1]))["timewait_check"]["conn2_isn_vs_old"] != "lower")' "$FX"
        then break; fi
        log "$name: the new ISN was not lower than the old sequence (machine too slow?), retrying"
    done
    ns_exec c sysctl -qw net.ipv4.tcp_timestamps=1
    F put "$FX" scenario "$("$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$desc")"
    F put "$FX" capture_point "\"client eth0 (namespace psa-c), filter 'tcp port $port', snaplen 128\""
    F put "$FX" client_tcp_timestamps "$ts"
    F tshark "$FX" syn "$P" "tcp.flags.syn==1 && tcp.flags.ack==0"
    F tshark "$FX" synack "$P" "tcp.flags.syn==1 && tcp.flags.ack==1"
    F tshark "$FX" rst "$P" "tcp.flags.reset==1"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1" ip.src
    F tshark "$FX" port_reuse "$P" "tcp.analysis.reused_ports"
    F copy "$FX" new_isn_vs_old timewait_check.conn2_isn_vs_old
    F copy "$FX" server_answer_to_new_syn timewait_check.server_answer_to_conn2_syn
    F copy "$FX" second_connect client.connections.1.connect
    F copy "$FX" second_connect_elapsed_s client.connections.1.connect_elapsed_s
    kernel_facts "$FX" c s
    # kernel_facts ran after tcp_timestamps was restored: record what the client really used
    F put "$FX" kernel.psa-c.tcp_timestamps "\"$ts\""
    finish "$name.facts.json" "$name.pcap"
}

rec_timewait() {
    tw_variant timewait-reuse 5007 40007 1 "client 10.203.3.1:40007 (SO_REUSEADDR, fixed port) sends 2000000 bytes (+4 bytes length prefix); the server answers and closes FIRST, so the server holds TIME-WAIT; the client closes on EOF and 30 ms later connects again from the same port: a SYN for a tuple in TIME-WAIT. Timestamps on (default). The new ISN is lower than the old connection's last sequence number (the first transfer moved it further than the ISN clock), but the SYN's TSval is newer, so the kernel accepts it (TIME-WAIT recycled, SYN-ACK at once; the server ISN is the old snd_nxt + 65537). The second connection sends 100 bytes and is closed the same way."
    tw_variant timewait-reuse-nots 5008 40008 0 "as timewait-reuse, but net.ipv4.tcp_timestamps=0 in the client namespace (no timestamps on either connection). The new SYN's ISN is lower than what the TIME-WAIT socket expects and there is no TSval to judge by, so the server's TIME-WAIT socket answers with a bare ACK carrying its old sequence numbers; the client (SYN-SENT) answers that ACK with a RST, which kills the TIME-WAIT socket (tcp_rfc1337=0), and re-arms its SYN timer to the minimum (TCP_TIMEOUT_MIN, 2 jiffies): its SYN retransmission ~10 ms later gets a normal SYN-ACK with a fresh ISN."
}

# ---------------------------------------------------------------------------------------------
ALL=(lossy stalled resets keepalive portscan synflood simopen timewait)
START=$SECONDS
if [[ $# -gt 0 ]]; then
    for s in "$@"; do
        [[ " ${ALL[*]} " == *" $s "* ]] || { echo "unknown scenario $s (known: ${ALL[*]})" >&2; exit 2; }
    done
    ALL=("$@")
fi
for s in "${ALL[@]}"; do "rec_$s"; done
log "done in $((SECONDS - START)) s"
