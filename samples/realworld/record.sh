#!/usr/bin/env bash
# Record the real-world-shaped captures of samples/realworld/ (issue 20; see README.md there).
#   sudo bash samples/realworld/record.sh                       # everything (~4 minutes)
#   sudo bash samples/realworld/record.sh offload-partial ...   # only the named scenarios
# Scenarios: offload-partial offload-ipv4-zero clean-http rewritten corrupt-accepted corrupt-dropped
#   window-shrink-rounding idle-keepalive idle-browser midstream-start closewait-leak syn-retries-linux
#   syn-retries-linux-linear keepalive-answered zero-window-short zero-window-hang small-window-hang
#   fin-retrans-after-timers sender-lossy rtt-delayed-ack one-direction no-ip
# Derived scenarios (offload-ipv4-zero, rewritten, corrupt-accepted) edit a committed capture of
# another scenario (offload-partial.pcap, clean-http.pcap) with a derive_*.py script; they run after it.
# Needs root, iproute2, iptables, ethtool, tcpdump, tshark, arping, ping, python3 (stdlib only).
# All traffic stays inside network namespaces psr-* (subnets 10.204.x.x). Idempotent: namespaces of a
# previous (interrupted) run are deleted first, and all of them are deleted on exit.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE"
# shellcheck source=../lib/netns.sh
source "$HERE/../lib/netns.sh"
# shellcheck source=../anomalies/helpers.sh
source "$HERE/../anomalies/helpers.sh"
# shellcheck source=rwhelpers.sh
source "$HERE/rwhelpers.sh"

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ next to the committed files (here and in ../anomalies)
WORK=$(mktemp -d /tmp/psr-record.XXXXXX)
chmod 755 "$WORK"

ns_init psr
trap 'bg_stop_all; ns_cleanup; rm -rf "$WORK"' EXIT
for ns in $(ip netns list | awk '$1 ~ /^psr-/ {print $1}'); do ip netns del "$ns"; done

PEERS=("$PY" "$HERE/peers.py")
C1=10.204.1.1    # client psr-c  (pair c s, subnet 1): most scenarios
S1=10.204.1.2    # server psr-s
ensure_cs() { [[ -e /run/netns/psr-c && -e /run/netns/psr-s ]] || pair c s 1; }

# ---------------------------------------------------------------------------------------------
# 1. offload-partial.pcap: TX checksum offload on the capturing host -> partial TCP checksums
# ---------------------------------------------------------------------------------------------
rec_offload-partial() {
    local C=10.204.2.1 S=10.204.2.2 PORT=8080 FX="$WORK/offload-partial.facts.json" P="$WORK/offload-partial.pcap"
    log "offload-partial: client $C (ethtool -K eth0 tx on) -> $S:$PORT, 2 HTTP-like rounds, captured on the client"
    pair oc os 2
    ns_exec oc ethtool -K eth0 tx on tso off gso off gro off >/dev/null
    rm -f "$FX"
    offload_facts "$FX" oc eth0
    offload_facts "$FX" os eth0
    bg_start os "$WORK/os.ready" "${PEERS[@]}" http server --bind $S --port $PORT --resp-bytes 20000 \
        --facts "$WORK/op-server.json" --ready-file "$WORK/os.ready"
    cap oc eth0 "$P"
    nstat_ns "$FX" 0 oc os
    ns_exec oc "${PEERS[@]}" http client --dst $S --port $PORT --rounds 2 --req-bytes 6000 --gap 0.05 \
        --facts "$WORK/op-client.json"
    bg_wait
    nstat_ns "$FX" 1 oc os
    ns_capture_stop
    F put "$FX" scenario "$(json "Client psr-oc 10.204.2.1 with TX checksum offload ON on its veth (ethtool -K eth0 tx on; TSO, GSO, GRO off), server psr-os 10.204.2.2 with it off. Two HTTP-like rounds over one connection: POST with a 6000-byte body, 200 OK with a 20000-byte body, 50 ms apart; the client closes first (FIN), the server closes on EOF. Captured on the client's eth0: every frame the client sent carries a partial TCP checksum (the folded pseudo-header sum the kernel leaves for the NIC; the veth never fills it in), every frame of the server a valid one. The server's kernel accepted every client segment (veth passes CHECKSUM_PARTIAL on as already verified).")"
    F put "$FX" capture_point '"client eth0 (namespace psr-oc, 10.204.2.1): the sender of the offloaded frames"'
    F put "$FX" capturing_host '"10.204.2.1"'
    F merge "$FX" client "$WORK/op-client.json"
    F merge "$FX" server "$WORK/op-server.json"
    F copy "$FX" four_tuple client.four_tuple
    CHK tshark "$FX" tcp_checksum_bad_validated "$P" "tcp.checksum.status == 0" ip.src
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1" ip.src
    F copy "$FX" server_TcpInCsumErrors_delta nstat_delta.psr-os.TcpInCsumErrors 0
    F copy "$FX" client_TcpRetransSegs_delta nstat_delta.psr-oc.TcpRetransSegs 0
    kernel_facts "$FX" oc os
    finish offload-partial.facts.json offload-partial.pcap
    "$PY" - "$OUT/offload-partial.facts.json" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
per = f["checksum_check"]["offload-partial.pcap"]["per_source"]
c, s = per["10.204.2.1"], per["10.204.2.2"]
assert c["tcp"] == {"partial": c["frames"]}, c
assert s["tcp"] == {"valid": s["frames"]}, s
f["client_frames_partial_checksum"] = c["frames"]
f["server_frames_valid_checksum"] = s["frames"]
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
open(sys.argv[1], "a").write("\n")
EOF
    pair_down oc os
}

# ---------------------------------------------------------------------------------------------
# 2. offload-ipv4-zero.pcap: derived from offload-partial.pcap, IPv4 header checksum 0 on the client's frames
# ---------------------------------------------------------------------------------------------
rec_offload-ipv4-zero() {
    local FX="$WORK/offload-ipv4-zero.facts.json"
    need offload-partial.pcap
    log "offload-ipv4-zero: derive_ipv4_zero.py offload-partial.pcap --sender 10.204.2.1"
    rm -f "$FX"
    "$PY" "$HERE/derive_ipv4_zero.py" "$OUT/offload-partial.pcap" "$WORK/offload-ipv4-zero.pcap" \
        --sender 10.204.2.1 --facts "$WORK/derive.json"
    F put "$FX" scenario "$(json "DERIVED edge-case capture (not recorded as such): offload-partial.pcap, a real capture taken on the client 10.204.2.1 with TX checksum offload on, with the IPv4 header checksum of every frame the client sent set to 0x0000, as captures taken on Windows and macOS hosts with checksum offload show it. Linux always computes the IPv4 header checksum in software, so it cannot record this itself. The client's TCP checksums stay partial; the server's frames are unchanged and valid. The truth of the exchange is the source's: see offload-partial.facts.json (copied under source_facts).")"
    F put "$FX" capture_point '"client eth0 (namespace psr-oc, 10.204.2.1), as in the source"'
    F put "$FX" capturing_host '"10.204.2.1"'
    F merge "$FX" derivation "$WORK/derive.json"
    F merge "$FX" source_facts "$OUT/offload-partial.facts.json"
    finish_derived offload-ipv4-zero.facts.json offload-ipv4-zero.pcap
}

# ---------------------------------------------------------------------------------------------
# 3a. clean-http.pcap: a clean exchange with valid checksums everywhere (the source of rewritten and corrupt-accepted)
# ---------------------------------------------------------------------------------------------
rec_clean-http() {
    local PORT=8081 FX="$WORK/clean-http.facts.json" P="$WORK/clean-http.pcap"
    ensure_cs
    log "clean-http: $C1 -> $S1:$PORT, 3 HTTP-like rounds, valid checksums"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 15000 \
        --facts "$WORK/clean-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 3 --req-bytes 2000 --gap 0.05 \
        --facts "$WORK/clean-client.json"
    bg_wait
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    F put "$FX" scenario "$(json "Client psr-c 10.204.1.1 -> server psr-s 10.204.1.2:$PORT, three HTTP-like rounds on one connection (POST with a 2000-byte body, 200 OK with a 15000-byte body, 50 ms apart); the client closes first, the server on EOF. TX checksum offload off on both veths: every checksum is valid. No loss, no retransmission. The source of rewritten.pcap and corrupt-accepted.pcap.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1)"'
    F merge "$FX" client "$WORK/clean-client.json"
    F merge "$FX" server "$WORK/clean-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F tshark "$FX" data "$P" "tcp.len > 0" ip.src
    kernel_facts "$FX" c s
    finish clean-http.facts.json clean-http.pcap
}

# ---------------------------------------------------------------------------------------------
# 3b. rewritten.pcap: clean-http.pcap with its addresses rewritten and no checksum fixed
# ---------------------------------------------------------------------------------------------
rec_rewritten() {
    local FX="$WORK/rewritten.facts.json"
    need clean-http.pcap
    log "rewritten: derive_rewritten.py clean-http.pcap (10.204.1.1 -> 192.0.2.10, 10.204.1.2 -> 198.51.100.20)"
    rm -f "$FX"
    "$PY" "$HERE/derive_rewritten.py" "$OUT/clean-http.pcap" "$WORK/rewritten.pcap" \
        --map 10.204.1.1=192.0.2.10 --map 10.204.1.2=198.51.100.20 --facts "$WORK/derive.json"
    F put "$FX" scenario "$(json "DERIVED: clean-http.pcap (a real capture with valid checksums) whose IPv4 addresses were rewritten as an anonymiser does (10.204.1.1 -> 192.0.2.10, 10.204.1.2 -> 198.51.100.20) without recomputing any checksum: the IPv4 header checksum and the TCP checksum are stale on every frame, both directions. Everything else, and so the whole story of the exchange, is the source's: three clean request/response rounds, no loss, no retransmission (source_facts).")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c), as in the source; the client is 192.0.2.10 after rewriting"'
    F merge "$FX" derivation "$WORK/derive.json"
    F merge "$FX" source_facts "$OUT/clean-http.facts.json"
    finish_derived rewritten.facts.json rewritten.pcap
}

# ---------------------------------------------------------------------------------------------
# 4a. corrupt-accepted.pcap: clean-http.pcap with one payload byte flipped in a segment the peer ACKed
# ---------------------------------------------------------------------------------------------
rec_corrupt-accepted() {
    local FX="$WORK/corrupt-accepted.facts.json"
    need clean-http.pcap
    log "corrupt-accepted: derive_corrupt_accepted.py clean-http.pcap --sender 10.204.1.2 --nth 5"
    rm -f "$FX"
    "$PY" "$HERE/derive_corrupt_accepted.py" "$OUT/clean-http.pcap" "$WORK/corrupt-accepted.pcap" \
        --sender 10.204.1.2 --nth 5 --facts "$WORK/derive.json"
    F put "$FX" scenario "$(json "DERIVED: clean-http.pcap with the last payload byte of the server's 5th data segment inverted and its TCP checksum left as it was, so that one segment's checksum is wrong in the capture. On the wire the client received the correct bytes and ACKed them (derivation.first_ack_covering_it_frame); nothing was retransmitted. This is what a capture corrupted on the capture side (capturing host, storage, an editing tool) looks like: the receiver ACCEPTED the segment. Not a drop.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1), as in the source"'
    F merge "$FX" derivation "$WORK/derive.json"
    F merge "$FX" source_facts "$OUT/clean-http.facts.json"
    CHK corrupt "$FX" "$WORK/corrupt-accepted.pcap"
    F put "$FX" receiver_accepted_corrupt_segment true
    F put "$FX" retransmissions 0
    finish_derived corrupt-accepted.facts.json corrupt-accepted.pcap
}

# ---------------------------------------------------------------------------------------------
# 4b. corrupt-dropped-{client,server}.pcap: a byte flipped on the wire; the receiver drops, the sender resends
# ---------------------------------------------------------------------------------------------
rec_corrupt-dropped() {
    local A=10.204.3.1 B=10.204.3.2 PORT=8083 FX="$WORK/corrupt-dropped.facts.json"
    log "corrupt-dropped: $A -> corrupt_relay.py (flips a byte of the 2nd data segment) -> $B:$PORT"
    ns_add ka; ns_quiet ka; ns_add km; ns_quiet km; ns_add kb; ns_quiet kb
    ns_veth ka eth0 km pa
    ns_veth km pb kb eth0
    ns_ifconf ka eth0 "$(mac 3 1)" $A/24
    ns_ifconf kb eth0 "$(mac 3 2)" $B/24
    ns_ifconf km pa "$(mac 3 101)"
    ns_ifconf km pb "$(mac 3 102)"
    ns_neigh ka eth0 $B "$(mac 3 2)"
    ns_neigh kb eth0 $A "$(mac 3 1)"
    rm -f "$FX"
    offload_facts "$FX" kb eth0
    bg_start km "$WORK/km.ready" "$PY" "$HERE/corrupt_relay.py" --a pa --b pb --dport $PORT --nth 2 \
        --facts "$WORK/relay.json" --ready-file "$WORK/km.ready"
    local RELAY_PID=${BG_PIDS[-1]}
    bg_start kb "$WORK/kb.ready" "${PEERS[@]}" http server --bind $B --port $PORT --resp-bytes 3000 \
        --facts "$WORK/cd-server.json" --ready-file "$WORK/kb.ready"
    cap ka eth0 "$WORK/corrupt-dropped-client.pcap"
    cap kb eth0 "$WORK/corrupt-dropped-server.pcap"
    nstat_ns "$FX" 0 ka kb
    ns_exec ka "${PEERS[@]}" http client --dst $B --port $PORT --rounds 3 --req-bytes 300 --gap 0.1 \
        --facts "$WORK/cd-client.json"
    sleep 0.3
    nstat_ns "$FX" 1 ka kb
    ns_capture_stop
    kill "$RELAY_PID"
    bg_wait
    F put "$FX" scenario "$(json "Client psr-ka 10.204.3.1 -> server psr-kb 10.204.3.2:$PORT through corrupt_relay.py in psr-km (an AF_PACKET wire between two veths, no delay) that inverts the last payload byte of the 2nd client->server data segment (the 2nd request, one segment) without fixing the TCP checksum. Three HTTP-like rounds (POST with 300-byte body, 200 OK with 3000 bytes, 100 ms apart), client closes first. The server's kernel verifies the checksum (the relay's frames are not offloaded), drops the segment and counts it (TcpInCsumErrors 1); it sends no ACK for it; the client sends the segment again (a tail loss probe: the only segment in flight). Captured at the same time on the client's eth0 (before the relay: the original has a valid checksum) and on the server's eth0 (after it: the corrupted copy with a wrong checksum, then the good resend).")"
    F put "$FX" capture_points '{"corrupt-dropped-client.pcap": "client eth0 (namespace psr-ka, 10.204.3.1), the sender, before the corrupting relay", "corrupt-dropped-server.pcap": "server eth0 (namespace psr-kb, 10.204.3.2), the receiver, after the relay"}'
    F merge "$FX" client "$WORK/cd-client.json"
    F merge "$FX" server "$WORK/cd-server.json"
    F merge "$FX" relay "$WORK/relay.json"
    F copy "$FX" four_tuple client.four_tuple
    CHK corrupt "$FX" "$WORK/corrupt-dropped-server.pcap"
    CHK retrans "$FX" "$WORK/corrupt-dropped-client.pcap" $A
    CHK tshark "$FX" server_side_bad_checksum "$WORK/corrupt-dropped-server.pcap" "tcp.checksum.status == 0"
    F tshark "$FX" server_side_retransmission "$WORK/corrupt-dropped-server.pcap" "tcp.analysis.retransmission"
    F tshark "$FX" client_side_retransmission "$WORK/corrupt-dropped-client.pcap" "tcp.analysis.retransmission"
    F copy "$FX" receiver_TcpInCsumErrors_delta nstat_delta.psr-kb.TcpInCsumErrors 0
    F copy "$FX" sender_TcpRetransSegs_delta nstat_delta.psr-ka.TcpRetransSegs 0
    F copy "$FX" sender_TCPLossProbes_delta nstat_delta.psr-ka.TcpExtTCPLossProbes 0
    F copy "$FX" sender_total_retrans client.tcp_info_before_close.total_retrans
    F copy "$FX" corrupted_segment relay.corrupted.0
    kernel_facts "$FX" ka kb
    finish corrupt-dropped.facts.json corrupt-dropped-client.pcap corrupt-dropped-server.pcap
    pair_down ka km kb
}

# ---------------------------------------------------------------------------------------------
# 5. window-shrink-rounding.pcap: a clean bulk transfer; the right edge moves back by < 2^wscale
# ---------------------------------------------------------------------------------------------
rec_window-shrink-rounding() {
    local PORT=8085 FX="$WORK/window-shrink-rounding.facts.json" P="$WORK/window-shrink-rounding.pcap"
    ensure_cs
    log "window-shrink-rounding: $C1 sends 4 MB to $S1:$PORT, the server reads in varying chunk sizes"
    rm -f "$FX"
    # both ends on CPU 0: with the sender's segments coming from two CPUs, veth hands them to two
    # per-CPU backlogs and the receiver sees them reordered (spurious fast retransmissions)
    bg_start s "$WORK/s.ready" taskset -c 0 "${PEERS[@]}" bulk server --bind $S1 --port $PORT \
        --read-sizes 1000,7000,30000,65536,3000,150000,500,20000 --facts "$WORK/ws-server.json" --ready-file "$WORK/s.ready"
    cap s eth0 "$P" -s 128
    nstat_ns "$FX" 0 c s
    ns_exec c taskset -c 0 "${PEERS[@]}" bulk client --dst $S1 --port $PORT --bytes 4000000 --facts "$WORK/ws-client.json"
    bg_wait
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    F put "$FX" scenario "$(json "A clean bulk transfer: client psr-c 10.204.1.1 sends 4000000 bytes to server psr-s 10.204.1.2:$PORT, which reads with recv() sizes cycling 1000,7000,30000,65536,3000,150000,500,20000 (default buffers; window scale 10 negotiated by the kernels, unit 1024 bytes). Both programs pinned to CPU 0 (no veth reordering). No loss, no retransmission, no zero window. MEASURED: the receiver's right edge (ack + window << 10) never moves back, not even by less than one scale unit: Linux 6.18 rounds a window it may not shrink UP to the scale unit (tcp_select_window: new_win = ALIGN(cur_win, 1 << rcv_wscale), tcp_shrink_window=0) and advertises aligned windows otherwise, so its right edge is monotonic. Sub-unit moves come from stacks that round the window DOWN when scaling it (BSD-derived stacks such as macOS and FreeBSD: th_win = recwin >> rcv_scale); Linux cannot record one. This capture is the negative control: a clean scaled transfer in which no window-shrink finding may fire. Captured on the server's (receiver's) eth0, snaplen 128.")"
    F put "$FX" capture_point '"server eth0 (namespace psr-s, 10.204.1.2), the receiver; snaplen 128"'
    F merge "$FX" client "$WORK/ws-client.json"
    F merge "$FX" server "$WORK/ws-server.json"
    F copy "$FX" four_tuple client.four_tuple
    CHK rightedge "$FX" "$P" $S1
    CHK tsedge "$FX" "$P" $S1
    CHK zerowin "$FX" "$P" $S1
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F tshark "$FX" zero_window "$P" "tcp.analysis.zero_window"
    F tshark "$FX" window_full "$P" "tcp.analysis.window_full"
    F tshark "$FX" syn_wscale "$P" "tcp.flags.syn==1" tcp.options.wscale.shift
    F copy "$FX" wscale rightedge_check.wscale
    F copy "$FX" right_edge_moves_back rightedge_check.right_edge_moves_back
    F copy "$FX" moves_smaller_than_scale_unit rightedge_check.moves_smaller_than_scale_unit
    F copy "$FX" moves_at_least_scale_unit rightedge_check.moves_at_least_scale_unit
    F copy "$FX" sender_TcpRetransSegs_delta nstat_delta.psr-c.TcpRetransSegs 0
    F copy "$FX" bytes_received server.bytes_received
    kernel_facts "$FX" c s
    finish window-shrink-rounding.facts.json window-shrink-rounding.pcap
}

# poller PORT ROUNDS: a second, unrelated connection from psr-c to psr-s:PORT that does a small
# request/response every second (ROUNDS times) and then closes. A real capture holds other traffic;
# without it a pcap cannot show how long it ran (there is no end-of-capture record), so the idle
# and half-closed connections of 6a-6c would look 0 s long.
poller() {
    bg_start s "$WORK/p.ready" "${PEERS[@]}" http server --bind $S1 --port "$1" --resp-bytes 200 \
        --facts "$WORK/poll-server.json" --ready-file "$WORK/p.ready"
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port "$1" --rounds "$2" --gap 1 --req-bytes 100 \
        --facts "$WORK/poll-client.json" >/dev/null &
    POLL_PID=$!
}
poller_facts() {
    wait "$POLL_PID"
    F merge "$1" background_poller.client "$WORK/poll-client.json"
    F put "$1" background_poller.what "$(json "an unrelated connection psr-c -> psr-s:$2: a 100-byte request and a 200-byte response every second, then a clean close; it is there so that the capture shows how long it ran")"
}

# ---------------------------------------------------------------------------------------------
# 6a. idle-keepalive.pcap: request/response, then the connection idles open until the capture stops
# ---------------------------------------------------------------------------------------------
rec_idle-keepalive() {
    local PORT=8086 FX="$WORK/idle-keepalive.facts.json" P="$WORK/idle-keepalive.pcap" pid
    ensure_cs
    log "idle-keepalive: one request/response, then idle; capture stops 5 s later, the client closes at 8 s"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 4000 \
        --facts "$WORK/ik-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 1 --req-bytes 400 --idle 8 \
        --facts "$WORK/ik-client.json" &
    pid=$!
    sleep 0.2
    poller $((PORT + 100)) 5
    sleep 4.8
    ns_exec c ss -tanoi "( dport = :$PORT )" >"$WORK/ik.ss"
    ns_capture_stop
    F put "$FX" capture_stopped_wall "$("$PY" -c 'import time; print(round(time.time(), 6))')"
    poller_facts "$FX" $((PORT + 100))
    wait $pid
    bg_wait
    nstat_ns "$FX" 1 c s
    F put "$FX" scenario "$(json "An idle keep-alive connection, as browsers keep them: client psr-c 10.204.1.1 connects to 10.204.1.2:$PORT, sends one request (400-byte body), gets a 4000-byte response and keeps the connection open and idle. An unrelated connection (background_poller, port $((PORT + 100))) polls once a second from 0.2 s to ~4.2 s, so the capture shows that it lasted. The capture stops ~5 s after it started, while both sides of the idle connection are ESTABLISHED (ss_at_capture_stop); the client closes 8 s after the response, after the capture. Nobody is in CLOSE_WAIT; nothing is wrong.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1)"'
    F merge "$FX" client "$WORK/ik-client.json"
    F merge "$FX" server "$WORK/ik-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F text "$FX" ss_at_capture_stop "$WORK/ik.ss"
    F tshark "$FX" fin "$P" "tcp.flags.fin==1" tcp.port
    F tshark "$FX" this_connection "$P" "tcp.port == $PORT" tcp.flags.str
    F put "$FX" close_wait_leak false
    no_client_fin "$FX" "$P"
    kernel_facts "$FX" c s
    finish idle-keepalive.facts.json idle-keepalive.pcap
}

# ---------------------------------------------------------------------------------------------
# 6a'. idle-browser.pcap: the server's keep-alive timeout closes an idle connection; the client closes late
# ---------------------------------------------------------------------------------------------
rec_idle-browser() {
    local PORT=8084 FX="$WORK/idle-browser.facts.json" P="$WORK/idle-browser.pcap" pid
    ensure_cs
    log "idle-browser: request/response; the server closes after 1.5 s idle; the client app closes 6 s after that"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 4000 --idle-timeout 1.5 \
        --facts "$WORK/ib-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 1 --req-bytes 400 --wait-eof --eof-wait 6 \
        --facts "$WORK/ib-client.json" &
    pid=$!
    sleep 0.2
    poller $((PORT + 100)) 4
    sleep 4.3
    ns_exec c ss -tanoi "( dport = :$PORT )" >"$WORK/ib.ss"
    ns_capture_stop
    F put "$FX" capture_stopped_wall "$("$PY" -c 'import time; print(round(time.time(), 6))')"
    poller_facts "$FX" $((PORT + 100))
    wait $pid
    bg_wait
    nstat_ns "$FX" 1 c s
    F put "$FX" scenario "$(json "A browser-like idle connection closed by the server: client psr-c 10.204.1.1 connects to 10.204.1.2:$PORT, sends one request (400-byte body), gets a 4000-byte response and keeps the connection for reuse. The server closes it after 1.5 s without a request (an HTTP keep-alive timeout): FIN, ACKed by the client's kernel. The client application, like a browser's connection pool, notices late and closes 6 s after the FIN, after the capture stopped (~4.5 s after it started); an unrelated connection (background_poller, port $((PORT + 100))) polls once a second from 0.2 s to ~3.2 s, so the capture shows that it lasted. The client sat in CLOSE_WAIT for 6 s on purpose: not a leak.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1)"'
    F merge "$FX" client "$WORK/ib-client.json"
    F merge "$FX" server "$WORK/ib-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F text "$FX" ss_at_capture_stop "$WORK/ib.ss"
    F tshark "$FX" this_connection "$P" "tcp.port == $PORT" tcp.flags.str
    F put "$FX" client_close_after_server_fin_s 6
    F put "$FX" close_wait_leak false
    no_client_fin "$FX" "$P"
    kernel_facts "$FX" c s
    finish idle-browser.facts.json idle-browser.pcap
}

# ---------------------------------------------------------------------------------------------
# 6b. midstream-start.pcap: the capture starts after the request; it holds two frames: server FIN, client ACK
# ---------------------------------------------------------------------------------------------
rec_midstream-start() {
    local PORT=8087 FX="$WORK/midstream-start.facts.json" P="$WORK/midstream-start.pcap" pid
    ensure_cs
    log "midstream-start: request/response before the capture; server idle timeout 1.5 s -> FIN; client closes 6 s later"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 4000 --idle-timeout 1.5 \
        --facts "$WORK/ms-server.json" --ready-file "$WORK/s.ready"
    nstat_ns "$FX" 0 c s
    rm -f "$WORK/ms.req"
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 1 --req-bytes 400 --wait-eof --eof-wait 6 \
        --ready-file-after-request "$WORK/ms.req" --facts "$WORK/ms-client.json" &
    pid=$!
    for _ in $(seq 100); do [[ -e $WORK/ms.req ]] && break; sleep 0.05; done
    sleep 0.3
    F put "$FX" capture_started_wall "$("$PY" -c 'import time; print(round(time.time(), 6))')"
    cap c eth0 "$P"
    sleep 1.5
    poller $((PORT + 100)) 3
    sleep 3
    ns_exec c ss -tanoi "( dport = :$PORT )" >"$WORK/ms.ss"
    ns_capture_stop
    F put "$FX" capture_stopped_wall "$("$PY" -c 'import time; print(round(time.time(), 6))')"
    poller_facts "$FX" $((PORT + 100))
    wait $pid
    bg_wait
    nstat_ns "$FX" 1 c s
    F put "$FX" scenario "$(json "A capture that starts in the middle of a connection: client psr-c 10.204.1.1 connects to 10.204.1.2:$PORT, sends a request and gets the response BEFORE tcpdump starts (0.3 s after the request). The server closes the idle connection 1.5 s after its response (an HTTP keep-alive timeout): its FIN and the client kernel's ACK are the first two frames of the capture and the only two of this connection. An unrelated connection (background_poller, port $((PORT + 100))) polls once a second from 1.5 s to ~3.5 s after the capture started, so the capture shows that it lasted. The client application, like a browser's connection pool, notices the close late and closes 6 s after the FIN, after the capture stopped (~4.5 s after it started). The client was in CLOSE_WAIT for ~6 s: normal, not a leak; the capture shows 2 frames and ~2.5 s of it.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1), started after the response"'
    F merge "$FX" client "$WORK/ms-client.json"
    F merge "$FX" server "$WORK/ms-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F text "$FX" ss_at_capture_stop "$WORK/ms.ss"
    F tshark "$FX" this_connection "$P" "tcp.port == $PORT" tcp.flags.str
    F put "$FX" client_close_after_server_fin_s 6
    F put "$FX" close_wait_leak false
    no_client_fin "$FX" "$P"
    kernel_facts "$FX" c s
    finish midstream-start.facts.json midstream-start.pcap
}

# ---------------------------------------------------------------------------------------------
# 6c. closewait-leak.pcap: the control: the client's FIN is ACKed and the server does not close for 8 s
# ---------------------------------------------------------------------------------------------
rec_closewait-leak() {
    local PORT=8088 HOLD=10 FX="$WORK/closewait-leak.facts.json" P="$WORK/closewait-leak.pcap"
    ensure_cs
    log "closewait-leak: client closes first; the server holds the socket $HOLD s without close(); the capture stops ~7.5 s into it"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 4000 --hold $HOLD \
        --hold-ss-at 1,7,9 --facts "$WORK/cw-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 1 --req-bytes 400 --facts "$WORK/cw-client.json"
    poller $((PORT + 100)) 8
    sleep 7
    ns_capture_stop
    F put "$FX" capture_stopped_wall "$("$PY" -c 'import time; print(round(time.time(), 6))')"
    poller_facts "$FX" $((PORT + 100))
    bg_wait
    nstat_ns "$FX" 1 c s
    F put "$FX" scenario "$(json "The true CLOSE_WAIT leak (control): client psr-c 10.204.1.1 sends one request to 10.204.1.2:$PORT, gets the response and closes (FIN); the server's kernel ACKs the FIN and the server application does NOT call close() for $HOLD s (server.hold_seconds; ss shows CLOSE-WAIT at 1, 7 and 9 s into the hold: server.ss_during_hold). An unrelated connection (background_poller, port $((PORT + 100))) polls once a second from ~0 s to ~7 s, so the capture shows that it lasted. The capture starts before the connection and stops ~7.5 s after the client's FIN (capture_stopped_wall), the server still in CLOSE_WAIT; the server's own FIN comes ~2.5 s after the capture (self-checked: no FIN from the server in the capture).")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1)"'
    F merge "$FX" client "$WORK/cw-client.json"
    F merge "$FX" server "$WORK/cw-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F put "$FX" close_wait_seconds $HOLD
    F put "$FX" close_wait_leak true
    F tshark "$FX" this_connection "$P" "tcp.port == $PORT" tcp.flags.str
    CHK fins "$FX" "$P"
    "$PY" -c 'import json,sys; f=json.load(open(sys.argv[1])); sys.exit("server FIN inside the capture" if sys.argv[2] in f["fin_check"]["per_sender"] else 0)' "$FX" "$S1:$PORT"
    kernel_facts "$FX" c s
    finish closewait-leak.facts.json closewait-leak.pcap
}

# ---------------------------------------------------------------------------------------------
# 7. syn-retries-linux.pcap: SYNs to a silently dropping port, tcp_syn_retries=3
# ---------------------------------------------------------------------------------------------
# syn_variant NAME PORT LINEAR DESCRIPTION OS: tcp_syn_retries=3, tcp_syn_linear_timeouts=LINEAR in psr-c
syn_variant() {
    local name=$1 PORT=$2 lin=$3 desc=$4 os=$5 FX="$WORK/$1.facts.json" P="$WORK/$1.pcap"
    ensure_cs
    log "$name: connect() to $S1:$PORT, INPUT DROP on the server, tcp_syn_retries=3, tcp_syn_linear_timeouts=$lin"
    rm -f "$FX"
    ns_exec c sysctl -qw net.ipv4.tcp_syn_retries=3 net.ipv4.tcp_syn_linear_timeouts="$lin"
    ns_exec s iptables -A INPUT -p tcp --dport $PORT -m comment --comment psr-syndrop -j DROP
    cap c eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" synretry client --dst $S1 --port $PORT --facts "$WORK/sr-client.json"
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    ns_exec s iptables -L INPUT -v -x -n >"$WORK/sr.iptables"
    ns_exec s iptables -D INPUT -p tcp --dport $PORT -m comment --comment psr-syndrop -j DROP
    F put "$FX" scenario "$(json "$desc")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1)"'
    F merge "$FX" client "$WORK/sr-client.json"
    F iptables "$FX" iptables "$WORK/sr.iptables" psr-syndrop
    F put "$FX" syn_retries_sysctl 3
    F put "$FX" syn_linear_timeouts_sysctl "$lin"
    CHK synsched "$FX" "$P" $C1
    F copy "$FX" errno client.connect
    F copy "$FX" connect_elapsed_s client.connect_elapsed_s
    F copy "$FX" syn_gaps_s syn_schedule_check.gaps_s
    F copy "$FX" syns syn_schedule_check.syns
    F put "$FX" os "$(json "$os")"
    kernel_facts "$FX" c s
    ns_exec c sysctl -qw net.ipv4.tcp_syn_retries=6 net.ipv4.tcp_syn_linear_timeouts=4
    F put "$FX" kernel.psr-c.tcp_syn_retries '"3"'
    F put "$FX" kernel.psr-c.tcp_syn_linear_timeouts "\"$lin\""
    finish "$name.facts.json" "$name.pcap"
}

# ---------------------------------------------------------------------------------------------
# 7. syn-retries-linux.pcap, syn-retries-linux-linear.pcap: SYNs to a silently dropping port
# ---------------------------------------------------------------------------------------------
rec_syn-retries-linux() {
    syn_variant syn-retries-linux 8079 0 "A Linux client (net.ipv4.tcp_syn_retries=3, tcp_syn_linear_timeouts=0 in psr-c: the classic schedule of every Linux before 6.5) connect()s to 10.204.1.2:8079, where an iptables rule on the server drops every SYN silently. The kernel sends the SYN and 3 retransmissions with exponential back-off from a 1 s initial RTO (at 0, 1, 3, 7 s: gaps 1, 2, 4 s), then connect() fails with ETIMEDOUT ~15 s after the first SYN (8 s after the last). Captured on the client's eth0." "Linux, classic exponential SYN back-off (initial RTO 1 s, doubling: gaps 1, 2, 4 s); also what Linux >= 6.5 does with tcp_syn_linear_timeouts=0"
}

rec_syn-retries-linux-linear() {
    syn_variant syn-retries-linux-linear 8078 4 "As syn-retries-linux, but with the default of Linux >= 6.5, tcp_syn_linear_timeouts=4: the first 4 retransmissions come after a fixed 1 s (linear), only then the RTO doubles, and the linear ones are added to tcp_syn_retries=3: 8 SYNs at ~0, 1, 2, 3, 4, 5, 7, 11 s (gaps 1, 1, 1, 1, 1, 2, 4 s), ETIMEDOUT ~19.4 s after the first. This is the Linux 6.18 default schedule (host default: tcp_syn_linear_timeouts=4)." "Linux >= 6.5, linear-then-exponential SYN back-off (tcp_syn_linear_timeouts=4: gaps 1, 1, 1, 1, 1, 2, 4 s)"
}

# ---------------------------------------------------------------------------------------------
# 8. keepalive-answered.pcap: keep-alive every ~1 s on an idle connection, every probe answered
# ---------------------------------------------------------------------------------------------
rec_keepalive-answered() {
    local PORT=8090 FX="$WORK/keepalive-answered.facts.json" P="$WORK/keepalive-answered.pcap"
    ensure_cs
    log "keepalive-answered: TCP_KEEPIDLE=1 TCP_KEEPINTVL=1 TCP_KEEPCNT=3, idle 6.5 s, then close"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 1000 \
        --facts "$WORK/ka-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    cap s eth0 "$WORK/keepalive-answered-server.pcap"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 1 --req-bytes 200 --idle 6.5 \
        --keepalive 1,1,3 --facts "$WORK/ka-client.json"
    bg_wait
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    F put "$FX" scenario "$(json "TCP keep-alive answered: client psr-c 10.204.1.1 (SO_KEEPALIVE=1, TCP_KEEPIDLE=1, TCP_KEEPINTVL=1, TCP_KEEPCNT=3) does one request/response with 10.204.1.2:$PORT, stays idle 6.5 s, then closes (FIN); the server closes on EOF. Captured on both ends at the same time. The client's kernel sends a keep-alive probe after each second of silence; the server's kernel answers every one at once, so the client never needs a second probe in a row (TCP_KEEPINTVL unused). All probes answered; nothing is wrong.")"
    F put "$FX" capture_points '{"keepalive-answered.pcap": "client eth0 (namespace psr-c, 10.204.1.1), the prober", "keepalive-answered-server.pcap": "server eth0 (namespace psr-s, 10.204.1.2), the answerer, at the same time"}'
    F merge "$FX" client "$WORK/ka-client.json"
    F merge "$FX" server "$WORK/ka-server.json"
    F copy "$FX" four_tuple client.four_tuple
    CHK keepalive "$FX" "$P"
    F tshark "$FX" keep_alive "$P" "tcp.analysis.keep_alive"
    F tshark "$FX" keep_alive_ack "$P" "tcp.analysis.keep_alive_ack"
    F copy "$FX" keepalive_probes keepalive_check.probes
    F copy "$FX" keepalive_answered keepalive_check.answered
    F copy "$FX" nstat_TcpExtTCPKeepAlive_delta nstat_delta.psr-c.TcpExtTCPKeepAlive 0
    kernel_facts "$FX" c s
    cp "$FX" "$WORK/ka-tmp.json"
    CHK keepalive "$WORK/ka-tmp.json" "$WORK/keepalive-answered-server.pcap"
    "$PY" -c 'import json,sys; f=json.load(open(sys.argv[1])); print(json.dumps(f["keepalive_check"]))' "$WORK/ka-tmp.json" >"$WORK/ka-srv.json"
    F merge "$FX" keepalive_check_server_side "$WORK/ka-srv.json"
    finish keepalive-answered.facts.json keepalive-answered.pcap keepalive-answered-server.pcap
}

# ---------------------------------------------------------------------------------------------
# 9a. zero-window-short.pcap: tiny receive buffer, the reader pauses 10 ms now and then
# ---------------------------------------------------------------------------------------------
rec_zero-window-short() {
    local PORT=8091 FX="$WORK/zero-window-short.facts.json" P="$WORK/zero-window-short.pcap"
    ensure_cs
    log "zero-window-short: server SO_RCVBUF 65536, reads 4096 at a time, sleeps 10 ms after every 100 kB; client sends 600 kB"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" taskset -c 0 "${PEERS[@]}" bulk server --bind $S1 --port $PORT --rcvbuf 65536 --read-sizes 4096 \
        --pause-every 100000 --pause 0.01 --facts "$WORK/zs-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P" -s 128
    nstat_ns "$FX" 0 c s
    ns_exec c taskset -c 0 "${PEERS[@]}" bulk client --dst $S1 --port $PORT --bytes 600000 --facts "$WORK/zs-client.json"
    bg_wait
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    F put "$FX" scenario "$(json "Zero windows that recover within ~10 ms: server psr-s 10.204.1.2:$PORT with SO_RCVBUF 65536 (set before listen; the kernel doubles it to 131072) reads 4096 bytes per recv() and sleeps 10 ms after every 100000 bytes; client psr-c 10.204.1.1 sends 600000 bytes. Both pinned to CPU 0. During each pause the client fills the window and the server's kernel advertises window 0; ~10 ms later the reader wakes and the window opens again (zero_window_check: the 5 pauses give the ~10 ms episodes; the other episodes last microseconds, the reader catching up). The sender never has to probe (sender_TCPWinProbe_delta 0). A tail loss probe the sender may fire during a pause is spurious: the receiver has the data and DSACKs the copy (sender_TCPLossProbes_delta, TcpExtTCPDSACKRecv). The whole transfer takes ~70 ms (transfer_s) and the zero windows ~30 ms of it (total_zero_window_s): low impact, not a warning. Captured on the client's (sender's) eth0, snaplen 128.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1), the sender; snaplen 128"'
    F merge "$FX" client "$WORK/zs-client.json"
    F merge "$FX" server "$WORK/zs-server.json"
    F copy "$FX" four_tuple client.four_tuple
    CHK zerowin "$FX" "$P" $S1
    F tshark "$FX" zero_window "$P" "tcp.analysis.zero_window"
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F copy "$FX" zero_window_episodes zero_window_check.episodes
    F copy "$FX" longest_zero_window_s zero_window_check.longest_closed_episode_s
    F copy "$FX" total_zero_window_s zero_window_check.total_closed_s
    F copy "$FX" transfer_s client.events.2.t
    F copy "$FX" sender_TcpRetransSegs_delta nstat_delta.psr-c.TcpRetransSegs 0
    F copy "$FX" sender_TCPLossProbes_delta nstat_delta.psr-c.TcpExtTCPLossProbes 0
    F copy "$FX" sender_TCPWinProbe_delta nstat_delta.psr-c.TcpExtTCPWinProbe 0
    F copy "$FX" bytes_received server.bytes_received
    F copy "$FX" reader_pauses server.pauses
    kernel_facts "$FX" c s
    finish zero-window-short.facts.json zero-window-short.pcap
}

# ---------------------------------------------------------------------------------------------
# 9b. zero-window-hang.pcap: the receiver shrinks its buffer, stops reading, then stops acknowledging
# ---------------------------------------------------------------------------------------------
# hang_variant NAME PORT DROP_AFTER DESCRIPTION: the receiver shrinks SO_RCVBUF to 2048 after 300000 bytes,
# reads slowly (a recv() every 50 ms) for 1.5 s, stops reading, and DROP_AFTER s later stops sending
# anything (iptables OUTPUT DROP in its namespace) for 14 s; the sender's send() times out after 20 s
hang_variant() {
    local name=$1 PORT=$2 after=$3 desc=$4 FX="$WORK/$1.facts.json" P="$WORK/$1.pcap"
    local RULE="iptables -A OUTPUT -o eth0 -p tcp --sport $PORT -m comment --comment psr-hang -j DROP"
    ensure_cs
    log "$name: receiver shrinks SO_RCVBUF, reads slowly 1.5 s, stops reading, $after s later stops sending anything"
    rm -f "$FX"
    # both ends on CPU 0 (no veth reordering)
    bg_start s "$WORK/s.ready" taskset -c 0 "${PEERS[@]}" bulk server --bind $S1 --port $PORT --read-sizes 65536 \
        --hang-shrink-at 300000 --hang-rcvbuf 2048 --hang-slow-read 0.05 --hang-stop-read-after 1.5 \
        --hang-drop-after "$after" --hang-cmd "$RULE" --hang-hold 14 --facts "$WORK/zh-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P" -s 128
    nstat_ns "$FX" 0 c s
    ns_exec c taskset -c 0 "${PEERS[@]}" bulk client --dst $S1 --port $PORT --bytes 3000000 --send-timeout 20 \
        --facts "$WORK/zh-client.json"
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    F put "$FX" capture_stopped_wall "$("$PY" -c 'import time; print(round(time.time(), 6))')"
    ns_exec s iptables -L OUTPUT -v -x -n >"$WORK/zh.iptables"
    bg_wait
    ns_exec s iptables -F OUTPUT
    F put "$FX" scenario "$(json "$desc")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1), the sender; snaplen 128"'
    F merge "$FX" client "$WORK/zh-client.json"
    F merge "$FX" server "$WORK/zh-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F iptables "$FX" iptables "$WORK/zh.iptables" psr-hang
    CHK zerowin "$FX" "$P" $S1
    CHK retrans "$FX" "$P" $C1
    F tshark "$FX" zero_window "$P" "tcp.analysis.zero_window"
    F tshark "$FX" zero_window_probe "$P" "tcp.analysis.zero_window_probe"
    F tshark "$FX" keep_alive "$P" "tcp.analysis.keep_alive"
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F tshark "$FX" window_full "$P" "tcp.analysis.window_full"
    F copy "$FX" sender_TcpRetransSegs_delta nstat_delta.psr-c.TcpRetransSegs 0
    F copy "$FX" sender_TCPLossProbes_delta nstat_delta.psr-c.TcpExtTCPLossProbes 0
    F copy "$FX" sender_TCPWinProbe_delta nstat_delta.psr-c.TcpExtTCPWinProbe 0
    F copy "$FX" sender_TCPTimeouts_delta nstat_delta.psr-c.TcpExtTCPTimeouts 0
    F copy "$FX" receiver_packets_dropped_by_rule iptables.drop_rule_packets
    F copy "$FX" sender_tcp_info_at_end client.tcp_info_at_end
    F put "$FX" fault '"receiver"'
    F put "$FX" network_loss false
    kernel_facts "$FX" c s
    CHK hangtimes "$FX" "$P"
    # the client's socket outlives the client (an orphan still probing): a fresh pair for what follows
    pair_down c s
    # self-check: zero-window-hang ends in a zero window (probes), small-window-hang with data unacknowledged
    "$PY" - "$FX" "$name" <<'EOF' || return 3
import json, sys
f = json.load(open(sys.argv[1]))
t = f["sender_tcp_info_at_end"]
ok = t["unacked"] > 0 if sys.argv[2] == "small-window-hang" else (t["unacked"] == 0 and t["snd_wnd"] == 0)
print("%s self-check: unacked %d, snd_wnd %d -> %s" % (sys.argv[2], t["unacked"], t["snd_wnd"], "ok" if ok else "retry"))
sys.exit(0 if ok else 1)
EOF
    finish "$name.facts.json" "$name.pcap"
}

# hang_retry ARGS...: hang_variant, up to 3 attempts (the hang must land in the intended state)
hang_retry() {
    local attempt rc
    for attempt in 1 2 3; do
        rc=0; hang_variant "$@" || rc=$?
        [[ $rc == 0 ]] && return 0
        [[ $rc == 3 ]] || return $rc
        log "$1: attempt $attempt did not end in the intended state, again"
    done
    return 1
}

# ---------------------------------------------------------------------------------------------
# 9b. zero-window-hang.pcap: the receiver stops reading, then (2 s later) stops acknowledging
# 9c. small-window-hang.pcap: the receiver's window is below one MSS when it stops reading and acknowledging
# ---------------------------------------------------------------------------------------------
rec_zero-window-hang() {
    hang_retry zero-window-hang 8092 2 "A receiver that hangs (issue 20 section 5): client psr-c 10.204.1.1 sends to server psr-s 10.204.1.2:8092. After 300000 bytes the server application sets SO_RCVBUF 2048 on the connected socket (the kernel makes it 4096): while the server reads slowly (a recv() every 50 ms) for 1.5 s, its window alternates between 3072 bytes (about two MSS: the client sends 1448 + 1448 + 176 and the window is full) and 0 (the receiver's delayed ACK 40 ms later, before the next read); some of the client's tail loss probes in this phase are spurious (the receiver only delayed its ACK). Then the server stops reading: zero window; the client sends zero-window probes with back-off and the server's kernel answers them with window 0. 2 s later an iptables rule in the server's namespace drops every packet the server sends (server.hang.drop_command), as a hung appliance stops answering altogether: from then on the client's probes go unanswered, with exponential back-off, until the capture stops. Nothing was lost on the path: the fault is the receiver's. Times relative to the first frame in hang_times_rel_capture. Captured on the client's (sender's) eth0, snaplen 128."
}

rec_small-window-hang() {
    hang_retry small-window-hang 8097 0 "As zero-window-hang (the same shrunk 3072-byte window, full on every burst), but the server stops reading right after a recv() whose window update opened the window, and moments later (~10-30 ms, the time to start iptables; server.hang: stop_read_wall, drop_wall) stops sending anything, before its delayed ACK of the client's next 3072 bytes: those bytes stay unacknowledged, and the client retransmits (a tail loss probe, then the first segment on RTO with exponential back-off: ~0.24, 0.5, 1, 2, 4, 8 s; sender_TCPTimeouts_delta, sender_tcp_info_at_end) until the capture stops ~15.7 s after the hang. The receiver's kernel did get the data (it just cannot answer): nothing was lost on the path; the fault is the receiver's (a hung application or appliance), and issue 20 section 5 asks to tie the window-full stalls and these retransmissions into one receiver-side finding. Captured on the client's (sender's) eth0, snaplen 128."
}

# ---------------------------------------------------------------------------------------------
# 10. fin-retrans-after-timers.pcap: the client's ACK of the server's FIN is dropped; LAST-ACK, FIN resent
# ---------------------------------------------------------------------------------------------
rec_fin-retrans-after-timers() {
    local PORT=8093 FX="$WORK/fin-retrans-after-timers.facts.json" P="$WORK/fin-retrans-after-timers.pcap" i
    local RULE="iptables -A OUTPUT -o eth0 -p tcp -d $S1 --dport $PORT -m comment --comment psr-finack -j DROP"
    ensure_cs
    log "fin-retrans-after-timers: client closes, then drops its own packets to $S1:$PORT; the server's FIN is never ACKed (~105 s)"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 2000 --close-delay 1 \
        --facts "$WORK/fr-server.json" --ready-file "$WORK/s.ready"
    cap s eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 1 --req-bytes 300 \
        --drop-after-close "$RULE" --facts "$WORK/fr-client.json"
    bg_wait
    : >"$WORK/fr.ss"
    for i in $(seq 150); do
        { echo "# t+${i}s $(date -u +%H:%M:%S.%N)"; ns_exec s ss -tanoi "( sport = :$PORT )"; } >>"$WORK/fr.ss"
        ns_exec s ss -tan state last-ack "( sport = :$PORT )" | tail -n +2 | grep -q . || break
        sleep 1
    done
    sleep 1
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    ns_exec c iptables -L OUTPUT -v -x -n >"$WORK/fr.iptables"
    ns_exec c iptables -F OUTPUT
    F put "$FX" scenario "$(json "A FIN that is never acknowledged: client psr-c 10.204.1.1 sends one request to 10.204.1.2:$PORT, gets the response and closes first (FIN, ACKed). 0.2 s later an iptables rule in the client's namespace drops every packet the client sends to the server (client.drop_after_close). The server application closes 1 s after EOF: the server is in LAST-ACK, its FIN is ACKed by the client's kernel each time (TIME-WAIT answers), but every ACK is dropped before the wire. The server's kernel retransmits the FIN with exponential back-off (tcp_orphan_retries=0 means 8 tries for an orphaned socket) far beyond Zeek's 5 s close timers, then gives up and frees the socket (ss_last_ack, polled every second until it is gone). Captured on the server's eth0: no ACK of the server's FIN ever appears.")"
    F put "$FX" capture_point '"server eth0 (namespace psr-s, 10.204.1.2), the host in LAST-ACK"'
    F merge "$FX" client "$WORK/fr-client.json"
    F merge "$FX" server "$WORK/fr-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F iptables "$FX" iptables "$WORK/fr.iptables" psr-finack
    F text "$FX" ss_last_ack "$WORK/fr.ss"
    CHK fins "$FX" "$P"
    F tshark "$FX" server_fin "$P" "tcp.flags.fin==1 && ip.src==$S1"
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F copy "$FX" server_TcpRetransSegs_delta nstat_delta.psr-s.TcpRetransSegs 0
    F copy "$FX" server_TCPTimeouts_delta nstat_delta.psr-s.TcpExtTCPTimeouts 0
    F copy "$FX" server_TCPAbortOnTimeout_delta nstat_delta.psr-s.TcpExtTCPAbortOnTimeout 0
    F copy "$FX" client_acks_dropped iptables.drop_rule_packets
    "$PY" - "$FX" "$S1:$PORT" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
s = f["fin_check"]["per_sender"][sys.argv[2]]     # (dotted address: not reachable with facts.py copy)
f.update(server_fins=s["fins"], server_fin_retransmissions=s["fins"] - 1, server_fin_first_to_last_s=s["first_to_last_s"],
         server_fin_gaps_s=s["gaps_s"], acks_of_server_fin_in_capture=s["acks_of_fin"])
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
open(sys.argv[1], "a").write("\n")
EOF
    kernel_facts "$FX" c s
    finish fin-retrans-after-timers.facts.json fin-retrans-after-timers.pcap
    pair_down c s    # the client's TIME-WAIT socket is still there: a fresh pair for what follows
}

# ---------------------------------------------------------------------------------------------
# 11. sender-lossy.pcap: bulk over a router dropping 2% at random, captured at the sender
# ---------------------------------------------------------------------------------------------
rec_sender-lossy() {
    local CLI=10.204.10.1 SRV=10.204.11.1 PORT=8094 FX="$WORK/sender-lossy.facts.json" P="$WORK/sender-lossy.pcap"
    log "sender-lossy: $CLI -> router (random 2% drop of data segments) -> $SRV:$PORT, 2.5 MB, captured at the sender"
    ns_add lc; ns_quiet lc; ns_add lr; ns_quiet lr; ns_add ls; ns_quiet ls
    ns_veth lc eth0 lr eth0
    ns_veth lr eth1 ls eth0
    ns_ifconf lc eth0 "$(mac 10 1)" $CLI/24
    ns_ifconf lr eth0 "$(mac 10 254)" 10.204.10.254/24
    ns_ifconf lr eth1 "$(mac 11 254)" 10.204.11.254/24
    ns_ifconf ls eth0 "$(mac 11 1)" $SRV/24
    ns_exec lc ip route add default via 10.204.10.254
    ns_exec ls ip route add default via 10.204.11.254
    ns_exec lr sysctl -qw net.ipv4.ip_forward=1
    ns_neigh lc eth0 10.204.10.254 "$(mac 10 254)"
    ns_neigh lr eth0 $CLI "$(mac 10 1)"
    ns_neigh lr eth1 $SRV "$(mac 11 1)"
    ns_neigh ls eth0 10.204.11.254 "$(mac 11 254)"
    ns_exec lr iptables -A FORWARD -i eth0 -o eth1 -p tcp -s $CLI -d $SRV --dport $PORT --tcp-flags SYN,RST NONE \
        -m length --length 53:65535 -m statistic --mode random --probability 0.02 -m comment --comment psr-lossy -j DROP
    rm -f "$FX"
    bg_start ls "$WORK/ls.ready" "${PEERS[@]}" bulk server --bind $SRV --port $PORT --facts "$WORK/sl-server.json" \
        --ready-file "$WORK/ls.ready"
    cap lc eth0 "$P" -s 128
    nstat_ns "$FX" 0 lc ls
    ns_exec lc "${PEERS[@]}" bulk client --dst $SRV --port $PORT --bytes 2500000 --facts "$WORK/sl-client.json"
    bg_wait
    nstat_ns "$FX" 1 lc ls
    ns_capture_stop
    ns_exec lr iptables -L FORWARD -v -x -n >"$WORK/sl.iptables"
    F put "$FX" scenario "$(json "Bulk transfer over a lossy path, captured AT THE SENDER: client psr-lc 10.204.10.1 sends 2500000 bytes to server psr-ls 10.204.11.1:$PORT through router psr-lr, where iptables drops client->server segments carrying payload at random with probability 0.02 (statistic --mode random; SYN/RST and payload-less segments excluded). Nothing sits between the sender's stack and its own capture, so every segment in the capture below the sender's highest sequence number is a retransmission: rwcheck.py retrans counts them and that count equals the sender kernel's TcpRetransSegs delta (nstat), which is the truth issue 20 asks for. TSO/GSO off: one segment per frame. Snaplen 128.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-lc, 10.204.10.1), the sender, before the lossy router; snaplen 128"'
    F put "$FX" capturing_host '"10.204.10.1"'
    F merge "$FX" client "$WORK/sl-client.json"
    F merge "$FX" server "$WORK/sl-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F iptables "$FX" iptables "$WORK/sl.iptables" psr-lossy
    CHK retrans "$FX" "$P" $CLI
    F tshark "$FX" retransmission "$P" "tcp.analysis.retransmission"
    F tshark "$FX" fast_retransmission "$P" "tcp.analysis.fast_retransmission"
    F tshark "$FX" spurious_retransmission "$P" "tcp.analysis.spurious_retransmission"
    F tshark "$FX" out_of_order "$P" "tcp.analysis.out_of_order"
    F tshark "$FX" lost_segment "$P" "tcp.analysis.lost_segment"
    F tshark "$FX" dup_ack "$P" "tcp.analysis.duplicate_ack"
    F copy "$FX" dropped iptables.drop_rule_packets
    F copy "$FX" nstat_TcpRetransSegs_delta nstat_delta.psr-lc.TcpRetransSegs 0
    F copy "$FX" nstat_TCPLostRetransmit_delta nstat_delta.psr-lc.TcpExtTCPLostRetransmit 0
    F copy "$FX" nstat_TCPLossProbes_delta nstat_delta.psr-lc.TcpExtTCPLossProbes 0
    F copy "$FX" nstat_TCPTimeouts_delta nstat_delta.psr-lc.TcpExtTCPTimeouts 0
    F copy "$FX" sender_total_retrans client.tcp_info_before_close.total_retrans
    F copy "$FX" capture_retransmitted_segments retrans_check.retransmitted_segments
    F copy "$FX" bytes_received server.bytes_received
    kernel_facts "$FX" lc lr ls
    "$PY" - "$FX" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
f["capture_count_equals_kernel"] = f["capture_retransmitted_segments"] == f["nstat_TcpRetransSegs_delta"]
assert f["capture_count_equals_kernel"], (f["capture_retransmitted_segments"], f["nstat_TcpRetransSegs_delta"])
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
open(sys.argv[1], "a").write("\n")
EOF
    finish sender-lossy.facts.json sender-lossy.pcap
    pair_down lc lr ls
}

# ---------------------------------------------------------------------------------------------
# 12. rtt-delayed-ack.pcap: request/response rounds with a 60 ms think time: delayed ACKs of ~40 ms
# ---------------------------------------------------------------------------------------------
rec_rtt-delayed-ack() {
    local PORT=8095 FX="$WORK/rtt-delayed-ack.facts.json" P="$WORK/rtt-delayed-ack.pcap"
    ensure_cs
    log "rtt-delayed-ack: 30 rounds, TCP_QUICKACK=0, server thinks 60 ms, client waits 60 ms between rounds; ping first"
    rm -f "$FX"
    ns_exec c ping -c 20 -i 0.05 -q $S1 >"$WORK/rd.ping"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 300 --think 0.06 --no-quickack \
        --facts "$WORK/rd-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 30 --req-bytes 200 --gap 0.06 --no-quickack \
        --facts "$WORK/rd-client.json"
    bg_wait
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    F put "$FX" scenario "$(json "Delayed ACKs on a path with a real RTT of ~0.05 ms: client psr-c 10.204.1.1 and server 10.204.1.2:$PORT over one veth (ping_rtt_ms; TCP_INFO min_rtt of both sides; the handshake SYN -> SYN-ACK in the capture). 30 request/response rounds on one connection: a 200-byte POST; the server thinks 60 ms and answers 300 bytes; the client waits 60 ms before its next request. Both sides set TCP_QUICKACK=0 before every read (quick-ack off: Linux otherwise answers these small segments at once), so each side's ACK of the other's data is a delayed ACK sent by the delayed-ACK timer (TCP_ATO_MIN 40 ms; ato 40000 us in TCP_INFO): a pure ACK 40-48 ms after the data, never piggybacked (the answer comes 60 ms later). An RTT taken from such a data -> ACK pair measures the receiver's timer, not the path: the real RTT is ~1000 times smaller. Captured on the client's eth0.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1)"'
    F merge "$FX" client "$WORK/rd-client.json"
    F merge "$FX" server "$WORK/rd-server.json"
    F copy "$FX" four_tuple client.four_tuple
    F text "$FX" ping "$WORK/rd.ping"
    CHK acks "$FX" "$P"
    F tshark "$FX" ack_rtt_over_20ms "$P" "tcp.analysis.ack_rtt > 0.02" tcp.analysis.ack_rtt
    F tshark "$FX" initial_rtt "$P" "tcp.analysis.initial_rtt" tcp.analysis.initial_rtt
    F copy "$FX" client_tcpinfo_min_rtt_us client.tcp_info_before_close.min_rtt 0
    F copy "$FX" client_tcpinfo_rtt_us client.tcp_info_before_close.rtt
    F copy "$FX" server_tcpinfo_rtt_us server.tcp_info_before_close.rtt
    F copy "$FX" server_tcpinfo_min_rtt_us server.tcp_info_before_close.min_rtt 0
    F copy "$FX" client_tcpinfo_ato_us client.tcp_info_before_close.ato
    F copy "$FX" handshake_rtt_s ack_check.handshake.syn_to_synack_s
    F copy "$FX" delayed_acks_over_20ms ack_check.pure_ack_delays_over_20ms
    F copy "$FX" delayed_ack_max_s ack_check.pure_ack_delay_max_s
    "$PY" - "$FX" "$WORK/rd.ping" <<'EOF'
import json, re, sys
f = json.load(open(sys.argv[1]))
m = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", open(sys.argv[2]).read())
f["ping_rtt_ms"] = {"min": float(m.group(1)), "avg": float(m.group(2)), "max": float(m.group(3))}
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
open(sys.argv[1], "a").write("\n")
EOF
    kernel_facts "$FX" c s
    finish rtt-delayed-ack.facts.json rtt-delayed-ack.pcap
}

# ---------------------------------------------------------------------------------------------
# 13a. one-direction.pcap: tcpdump -Q out on the client: only what the client sent
# ---------------------------------------------------------------------------------------------
rec_one-direction() {
    local PORT=8096 FX="$WORK/one-direction.facts.json" P="$WORK/one-direction.pcap"
    ensure_cs
    log "one-direction: 2 rounds, captured with -Q out on the client (and in full alongside, not committed)"
    rm -f "$FX"
    bg_start s "$WORK/s.ready" "${PEERS[@]}" http server --bind $S1 --port $PORT --resp-bytes 8000 \
        --facts "$WORK/od-server.json" --ready-file "$WORK/s.ready"
    cap c eth0 "$P" -Q out
    cap c eth0 "$WORK/od-full.pcap"
    nstat_ns "$FX" 0 c s
    ns_exec c "${PEERS[@]}" http client --dst $S1 --port $PORT --rounds 2 --req-bytes 1000 --gap 0.05 \
        --facts "$WORK/od-client.json"
    bg_wait
    nstat_ns "$FX" 1 c s
    ns_capture_stop
    cap_check "$WORK/od-full.pcap"
    F put "$FX" scenario "$(json "A capture of one direction only: a normal exchange (client psr-c 10.204.1.1 -> 10.204.1.2:$PORT, two rounds of a 1000-byte POST and an 8000-byte response, clean close, client first) captured on the client's eth0 with tcpdump -Q out: only the frames the client sent. A full capture ran at the same time (not committed); frames_check holds both, so the frames the server sent, missing here, are known. Nothing went wrong in the exchange.")"
    F put "$FX" capture_point '"client eth0 (namespace psr-c, 10.204.1.1), tcpdump -Q out"'
    F merge "$FX" client "$WORK/od-client.json"
    F merge "$FX" server "$WORK/od-server.json"
    F copy "$FX" four_tuple client.four_tuple
    CHK frames "$FX" "$P"
    CHK frames "$FX" "$WORK/od-full.pcap"
    F put "$FX" full_capture_note '"od-full.pcap: the simultaneous full capture (both directions), not committed"'
    kernel_facts "$FX" c s
    finish one-direction.facts.json one-direction.pcap
}

# ---------------------------------------------------------------------------------------------
# 13b. no-ip.pcap: ARP only
# ---------------------------------------------------------------------------------------------
rec_no-ip() {
    local A=10.204.20.1 B=10.204.20.2 FX="$WORK/no-ip.facts.json" P="$WORK/no-ip.pcap"
    log "no-ip: arping -c 5 -i eth0 (ARPing 2.23, 1 s apart) from $A to $B, nothing else"
    ns_add na; ns_quiet na; ns_add nb; ns_quiet nb
    ns_veth na eth0 nb eth0
    ns_ifconf na eth0 "$(mac 20 1)" $A/24
    ns_ifconf nb eth0 "$(mac 20 2)" $B/24
    rm -f "$FX"
    cap na eth0 "$P"
    ns_exec na arping -c 5 -i eth0 $B >"$WORK/arping.out" 2>&1
    ns_capture_stop
    F put "$FX" scenario "$(json "A capture with no IP traffic at all: namespaces psr-na 10.204.20.1 and psr-nb 10.204.20.2 on one veth, IPv6 disabled; arping -c 5 -i eth0 10.204.20.2 (ARPing 2.23: 5 requests 1 s apart) from psr-na; only ARP requests (broadcast) and replies, 10 frames. Captured on psr-na's eth0.")"
    F put "$FX" capture_point '"psr-na eth0 (10.204.20.1)"'
    F text "$FX" arping_output "$WORK/arping.out"
    CHK frames "$FX" "$P"
    F tshark "$FX" arp "$P" "arp" arp.opcode
    F tshark "$FX" ip "$P" "ip or ipv6"
    finish no-ip.facts.json no-ip.pcap
    pair_down na nb
}

# ---------------------------------------------------------------------------------------------
ALL=(offload-partial offload-ipv4-zero clean-http rewritten corrupt-accepted corrupt-dropped window-shrink-rounding
     idle-keepalive idle-browser midstream-start closewait-leak syn-retries-linux syn-retries-linux-linear keepalive-answered zero-window-short
     zero-window-hang small-window-hang fin-retrans-after-timers sender-lossy rtt-delayed-ack one-direction no-ip)
START=$SECONDS
if [[ $# -gt 0 ]]; then
    for s in "$@"; do
        [[ " ${ALL[*]} " == *" $s "* ]] || { echo "unknown scenario $s (known: ${ALL[*]})" >&2; exit 2; }
    done
    ALL=("$@")
fi
for s in "${ALL[@]}"; do "rec_$s"; done
log "done in $((SECONDS - START)) s"
