#!/usr/bin/env bash
# Re-record every incident capture of samples/incidents/ (see README.md there).
#   sudo bash samples/incidents/record.sh
# Needs root, iproute2, tcpdump, tshark/editcap, iptables, python3 (stdlib only). ~1.5 minutes.
# All traffic stays inside network namespaces psi-* (subnets 10.202.x.x and their own loopbacks).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT="$HERE"
# shellcheck source=../lib/netns.sh
source "$HERE/../lib/netns.sh"
# shellcheck source=helpers.sh
source "$HERE/helpers.sh"

PY=/usr/bin/python3
[[ -x $PY ]] || PY=$(command -v python3)
WORK=$(mktemp -d /tmp/psi-record.XXXXXX)
chmod 755 "$WORK"

ns_init psi
trap 'bg_stop_all; ns_cleanup; rm -rf "$WORK"' EXIT

START=$SECONDS
# ---------------------------------------------------------------------------------------------
# 1+2. Load balancer that answers twice (lb-*.pcap) and its fix (lb-fixed-*.pcap)
# ---------------------------------------------------------------------------------------------
VIP=10.202.0.100
MAC_CLI=02:00:0a:ca:00:01
MAC_LB=02:00:0a:ca:00:02
MAC_BE=02:00:0a:ca:00:03
log "lb: building client / balancer / backend on a bridge"
for n in sw cli lb be; do ns_add $n; ns_quiet $n; done
# the bridge, like ns_bridge but with multicast off (no IGMP reports from br0 in the captures)
ns_exec sw ip link add br0 type bridge mcast_snooping 0
ns_exec sw ip link set br0 multicast off
ns_exec sw ip link set br0 up
ns_port cli eth0 sw p-cli br0 $MAC_CLI 10.202.0.1/24
ns_port lb  eth0 sw p-lb  br0 $MAC_LB  10.202.0.2/24
ns_port be  eth0 sw p-be  br0 $MAC_BE  10.202.0.3/24
ns_exec lb ip addr add $VIP/32 dev eth0                 # the balancer owns the VIP (answers ARP)
ns_exec be ip addr add $VIP/32 dev lo                   # DSR backend: VIP on lo, silent for ARP
ns_exec be sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.eth0.arp_ignore=1 \
    net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.eth0.arp_announce=2 \
    net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0

bg_start be "$WORK/be.ready" "$PY" "$HERE/tcp_server.py" --bind $VIP --port 80 --mode respond --ready-file "$WORK/be.ready"
bg_start lb "$WORK/lb.ready" "$PY" "$HERE/lb_forward.py" --if eth0 --vip $VIP --port 80 \
    --backend-mac $MAC_BE --ready-file "$WORK/lb.ready"

# let the bridge learn the backend's MAC before recording (else the first forwarded SYN is flooded to
# every port, the client's included): one broadcast UDP datagram from the backend (no reply, no ARP)
ns_exec be "$PY" -c 'import socket; s = socket.socket(2, 2); s.setsockopt(1, 6, 1); s.sendto(b"hi", ("10.202.0.255", 9))'
sleep 0.5
log "lb: broken balancer (its own stack sees the VIP packets)"
cap cli eth0 "$WORK/lb-client.pcap"
cap lb  eth0 "$WORK/lb-balancer.pcap"
cap be  eth0 "$WORK/lb-backend.pcap"
ns_exec cli "$PY" "$HERE/tcp_client.py" --dst $VIP --port 80 --count 3 --interval 1 --timeout 3 \
    --action request | tee "$OUT/lb-client.connect.txt"
ns_capture_stop
save lb-client.pcap lb-balancer.pcap lb-backend.pcap

log "lb: fixed balancer (iptables filter INPUT -d $VIP -j DROP; the AF_PACKET copy still goes out)"
ns_exec lb iptables -A INPUT -d $VIP -j DROP
cap cli eth0 "$WORK/lb-fixed-client.pcap"
cap lb  eth0 "$WORK/lb-fixed-balancer.pcap"
cap be  eth0 "$WORK/lb-fixed-backend.pcap"
ns_exec cli "$PY" "$HERE/tcp_client.py" --dst $VIP --port 80 --count 3 --interval 1 --timeout 3 \
    --action request | tee "$OUT/lb-fixed-client.connect.txt"
ns_capture_stop
save lb-fixed-client.pcap lb-fixed-balancer.pcap lb-fixed-backend.pcap
bg_stop_all

# ---------------------------------------------------------------------------------------------
# 3+4. Leaked CLOSE_WAIT socket poisons a port (closewait-reuse.pcap, closewait-reuse-oldkernel.pcap)
# ---------------------------------------------------------------------------------------------
FIN_TIMEOUT=3
CW_PORT=9000
CW_SPORT=40001
SSF="$OUT/closewait-reuse.ss.txt"
log "closewait-reuse: tcp_fin_timeout=$FIN_TIMEOUT, leaking server on 127.0.0.1:$CW_PORT, client port $CW_SPORT"
ns_add cw; ns_quiet cw
ns_exec cw sysctl -qw net.ipv4.tcp_fin_timeout=$FIN_TIMEOUT
bg_start cw "$WORK/cw.ready" "$PY" "$HERE/tcp_server.py" --bind 127.0.0.1 --port $CW_PORT --mode leak --ready-file "$WORK/cw.ready"
cap cw lo "$WORK/closewait-reuse.pcap" tcp port $CW_PORT
CW_T0=$(date +%s.%N)
{
    echo "# ss -tano in namespace psi-cw at the key moments of closewait-reuse.pcap"
    echo "# kernel $(uname -r); net.ipv4.tcp_fin_timeout=$(ns_exec cw cat /proc/sys/net/ipv4/tcp_fin_timeout)"
} >"$SSF"
ns_exec cw "$PY" "$HERE/tcp_client.py" --dst 127.0.0.1 --port $CW_PORT --sport $CW_SPORT --action close \
    --payload $'first connection\n' | tee "$WORK/cw1.txt"
sleep 0.5
ss_snap cw "A: 0.5 s after the client closed (FIN sent, ACKed; server never closes)" $CW_PORT >>"$SSF"
sleep $((FIN_TIMEOUT + 1))
ss_snap cw "B: $((FIN_TIMEOUT + 1)).5 s after the close, past tcp_fin_timeout=$FIN_TIMEOUT" $CW_PORT >>"$SSF"
ns_exec cw "$PY" "$HERE/tcp_client.py" --dst 127.0.0.1 --port $CW_PORT --sport $CW_SPORT --action close \
    --first 2 --timeout 10 --payload $'second connection\n' | tee "$WORK/cw2.txt"
sleep 0.5
ss_snap cw "C: 0.5 s after the second connection (same 4-tuple) was made, used and closed" $CW_PORT >>"$SSF"
ns_capture_stop
save closewait-reuse.pcap
{
    echo
    echo "# connect() results (tcp_client.py)"
    cat "$WORK/cw1.txt" "$WORK/cw2.txt"
} >>"$SSF"
bg_stop_all

log "closewait-reuse-oldkernel: deleting the challenge ACK, the RST and everything after the retry SYN"
"$HERE/derive_oldkernel.sh" "$OUT/closewait-reuse.pcap" "$OUT/closewait-reuse-oldkernel.pcap" \
    | tee "$OUT/closewait-reuse-oldkernel.txt"

# ---------------------------------------------------------------------------------------------
# 5. Minefield of leaked CLOSE_WAIT sockets (closewait-minefield.pcap)
# ---------------------------------------------------------------------------------------------
MF_PORT=9001
log "closewait-minefield: port range 40000-40399, 300 leaked sockets, then 100 new connects"
ns_add mf; ns_quiet mf
ns_exec mf sysctl -qw net.ipv4.tcp_fin_timeout=2 "net.ipv4.ip_local_port_range=40000 40399"
bg_start mf "$WORK/mf.ready" "$PY" "$HERE/tcp_server.py" --bind 127.0.0.1 --port $MF_PORT --mode leak \
    --backlog 1024 --ready-file "$WORK/mf.ready"
cap mf lo "$WORK/closewait-minefield.pcap" -s 96 tcp port $MF_PORT
ns_exec mf "$PY" "$HERE/minefield.py" --port $MF_PORT --stale 300 --kernel 40 --random 60 --wait 3.5 \
    >"$OUT/closewait-minefield.txt"
grep -v '^  ' "$OUT/closewait-minefield.txt" | grep -v 'phase1 ports' || true
ns_exec mf ss -tan state close-wait "( sport = :$MF_PORT )" | tail -n +2 | wc -l \
    | sed 's/^/server sockets in CLOSE-WAIT at the end: /' | tee -a "$OUT/closewait-minefield.txt"
ns_capture_stop
save closewait-minefield.pcap
{
    mfp="$OUT/closewait-minefield.pcap"
    echo "capture: $(tshark -r "$mfp" 2>/dev/null | wc -l) frames;" \
        "SYNs $(tshark -r "$mfp" -Y 'tcp.flags.syn==1 && tcp.flags.ack==0' 2>/dev/null | wc -l);" \
        "client RSTs (one per collision: answer to a challenge ACK) $(tshark -r "$mfp" -Y "tcp.dstport==$MF_PORT && tcp.flags.reset==1" 2>/dev/null | wc -l);" \
        "first such RST: frame $(tshark -r "$mfp" -Y "tcp.dstport==$MF_PORT && tcp.flags.reset==1" -T fields -e frame.number 2>/dev/null | head -1)"
} | tee -a "$OUT/closewait-minefield.txt"
bg_stop_all

# ---------------------------------------------------------------------------------------------
# 6. Accept queue full (accept-queue-full.pcap)
# ---------------------------------------------------------------------------------------------
AQ_PORT=9002
AQF="$OUT/accept-queue-full.txt"
log "accept-queue-full: listen(1) on 127.0.0.1:$AQ_PORT, never accept(); 4 clients, 15 s connect timeout"
ns_add aq; ns_quiet aq
{
    echo "# accept-queue-full.pcap: kernel $(uname -r), namespace psi-aq"
    for k in tcp_syn_linear_timeouts tcp_abort_on_overflow tcp_syn_retries tcp_syncookies somaxconn; do
        f=/proc/sys/net/ipv4/$k; [[ $k == somaxconn ]] && f=/proc/sys/net/core/somaxconn
        if [[ -e $f ]]; then echo "$k=$(ns_exec aq cat $f)"; else echo "$k: not present"; fi
    done
} >"$AQF"
bg_start aq "$WORK/aq.ready" "$PY" "$HERE/tcp_server.py" --bind 127.0.0.1 --port $AQ_PORT --mode noaccept \
    --backlog 1 --ready-file "$WORK/aq.ready"
cap aq lo "$WORK/accept-queue-full.pcap" tcp port $AQ_PORT
AQ_PIDS=()
for i in 1 2 3 4; do
    ns_exec aq "$PY" "$HERE/tcp_client.py" --dst 127.0.0.1 --port $AQ_PORT --first $i --timeout 15 \
        --action hold --hold $(( 16 - i )) >"$WORK/aq$i.txt" &
    AQ_PIDS+=("$!")
    sleep 0.3
done
sleep 1
ns_exec aq ss -ltn "( sport = :$AQ_PORT )" | sed 's/^/ss -ltn: /' >>"$AQF"
ns_exec aq nstat -asz TcpExtListenOverflows TcpExtListenDrops | grep -v '^#' | sed 's/^/nstat: /' >>"$AQF" || true
for p in "${AQ_PIDS[@]}"; do wait "$p"; done
ns_exec aq nstat -asz TcpExtListenOverflows TcpExtListenDrops | grep -v '^#' | sed 's/^/nstat at end: /' >>"$AQF" || true
cat "$WORK"/aq[1-4].txt | tee -a "$AQF"
ns_capture_stop
save accept-queue-full.pcap
bg_stop_all

# ---------------------------------------------------------------------------------------------
# 7+8. Refused, clean, unanswered SYN on a veth (refused.pcap, clean.pcap, unanswered-syn-veth.pcap)
# ---------------------------------------------------------------------------------------------
log "refused / clean / unanswered-syn-veth: client 10.202.3.1 <-veth-> server 10.202.3.2"
ns_add rc; ns_quiet rc; ns_add rs; ns_quiet rs
ns_veth rc eth0 rs eth0
ns_ifconf rc eth0 02:00:0a:ca:03:01 10.202.3.1/24
ns_ifconf rs eth0 02:00:0a:ca:03:02 10.202.3.2/24

cap rc eth0 "$WORK/refused.pcap"
ns_exec rc "$PY" "$HERE/tcp_client.py" --dst 10.202.3.2 --port 9999 --count 3 --interval 0.5 --action none \
    | tee "$OUT/refused.connect.txt"
ns_capture_stop
save refused.pcap

bg_start rs "$WORK/rs.ready" "$PY" "$HERE/tcp_server.py" --bind 10.202.3.2 --port 8080 --mode respond --ready-file "$WORK/rs.ready"
cap rc eth0 "$WORK/clean.pcap"
ns_exec rc "$PY" "$HERE/tcp_client.py" --dst 10.202.3.2 --port 8080 --action request | tee "$OUT/clean.connect.txt"
ns_capture_stop
save clean.pcap
bg_stop_all

ns_exec rs iptables -A INPUT -p tcp --dport 9997 -j DROP
ns_exec rc sysctl -qw net.ipv4.tcp_syn_retries=3
cap rc eth0 "$WORK/unanswered-syn-veth.pcap"
{
    echo "# client namespace psi-rc: tcp_syn_retries=$(ns_exec rc cat /proc/sys/net/ipv4/tcp_syn_retries)" \
         "tcp_syn_linear_timeouts=$(ns_exec rc cat /proc/sys/net/ipv4/tcp_syn_linear_timeouts 2>/dev/null || echo n/a)"
    echo "# server namespace psi-rs: iptables -A INPUT -p tcp --dport 9997 -j DROP"
    ns_exec rc "$PY" "$HERE/tcp_client.py" --dst 10.202.3.2 --port 9997 --timeout 60 --action none
} | tee "$OUT/unanswered-syn-veth.connect.txt"
ns_capture_stop
save unanswered-syn-veth.pcap

log "done in $((SECONDS - START)) s"
ls -l "$OUT"/*.pcap
