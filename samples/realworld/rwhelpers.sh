# Helpers for samples/realworld/record.sh, on top of ../lib/netns.sh and ../anomalies/helpers.sh (both
# sourced, not copied: log, ns_quiet, ns_ifconf, ns_neigh, bg_start, bg_wait, bg_stop_all, save, cap,
# cap_check, nstat_dump). What is here is ours:
#   F          ../anomalies/helpers.sh defines F as "$HERE/facts.py"; we have no facts.py of our own,
#              so F is redefined to run ../anomalies/facts.py (unchanged)
#   mac, pair, kernel_facts, finish: adapted copies of the functions of ../anomalies/record.sh
#              (10.204.x.x, prefix psr, more sysctls, derived captures)

ANOM="$HERE/../anomalies"
F() { "$PY" "$ANOM/facts.py" "$@"; }
CHK() { "$PY" "$HERE/rwcheck.py" "$@"; }
PCAPCHECK() { "$PY" "$ANOM/pcapcheck.py" "$@"; }

# json STRING: the string as a JSON string literal
json() { "$PY" -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$1"; }

# MACs 02:00:0a:cc:<subnet>:<host> (0a:cc = 10.204): the last two bytes repeat the IPv4 address
mac() { printf '02:00:0a:cc:%02x:%02x' "$1" "$2"; }

# pair A B SUBNET: namespaces A (10.204.SUBNET.1) and B (10.204.SUBNET.2) joined by a veth (eth0 each),
# fixed MACs, permanent neighbour entries, no IPv6, TX checksum offload/TSO/GSO/GRO off
pair() {
    local a=$1 b=$2 n=$3
    ns_add "$a"; ns_quiet "$a"; ns_add "$b"; ns_quiet "$b"
    ns_veth "$a" eth0 "$b" eth0
    ns_ifconf "$a" eth0 "$(mac "$n" 1)" "10.204.$n.1/24"
    ns_ifconf "$b" eth0 "$(mac "$n" 2)" "10.204.$n.2/24"
    ns_neigh "$a" eth0 "10.204.$n.2" "$(mac "$n" 2)"
    ns_neigh "$b" eth0 "10.204.$n.1" "$(mac "$n" 1)"
}

# pair_down A B: delete the namespaces of a pair (so a scenario can be recorded again in one run)
pair_down() {
    local ns
    for ns in "$@"; do ip netns del "$(ns_name "$ns")" 2>/dev/null || true; done
}

# kernel_facts FACTS NS...: the sysctls these scenarios depend on, per namespace
kernel_facts() {
    local fx=$1 ns k v js; shift
    for ns in "$@"; do
        js="{"
        for k in tcp_congestion_control tcp_timestamps tcp_sack tcp_window_scaling tcp_syn_retries \
                 tcp_synack_retries tcp_retries1 tcp_retries2 tcp_orphan_retries tcp_fin_timeout \
                 tcp_keepalive_time tcp_keepalive_intvl tcp_keepalive_probes tcp_shrink_window tcp_rmem \
                 tcp_wmem tcp_early_retrans tcp_recovery tcp_min_rtt_wlen; do
            v=$(ns_exec "$ns" cat /proc/sys/net/ipv4/$k 2>/dev/null | tr '\t' ' ' || echo n/a)
            js+="\"$k\": \"$v\", "
        done
        js+="\"rmem_max\": \"$(ns_exec "$ns" cat /proc/sys/net/core/rmem_max)\"}"
        F put "$fx" "kernel.$(ns_name "$ns")" "$js"
    done
}

# offload_facts FACTS NS IF: the interface's offload settings as ethtool reports them
offload_facts() {
    F put "$1" "ethtool_k.$(ns_name "$2").$3" "$(json "$(ns_exec "$2" ethtool -k "$3" | grep -E \
        '^(tx-checksumming|rx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|scatter-gather):')")"
}

# nstat_ns FACTS STEP NS...: STEP 0 = dump the counters of each namespace; STEP 1 = store the deltas
nstat_ns() {
    local fx=$1 step=$2 ns; shift 2
    for ns in "$@"; do
        nstat_dump "$ns" "$WORK/$ns.nstat$step"
        if [[ $step == 1 ]]; then
            F nstat "$fx" "nstat_delta.$(ns_name "$ns")" "$WORK/$ns.nstat0" "$WORK/$ns.nstat1"
        fi
    done
    return 0
}

# tshark_count PCAP FILTER: how many frames match
tshark_count() { tshark -r "$1" -Y "$2" -T fields -e frame.number 2>/dev/null | grep -c . || true; }

# capinfos_check FACTS PCAP: capinfos' frame count must equal the stdlib reader's (pcaps.NAME.frames)
capinfos_check() {
    local n
    n=$(capinfos -T -r -c "$2" | cut -f2)
    "$PY" - "$1" "$(basename "$2")" "$n" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
e = f["pcaps"][sys.argv[2]]
e["capinfos_frames"] = int(sys.argv[3])
assert e["capinfos_frames"] == e["frames"], (sys.argv[2], e)
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
open(sys.argv[1], "a").write("\n")
EOF
}

# finish FACTS PCAP...: tcpdump drop check, stdlib summary of every capture into the facts file,
# recording date, move everything into samples/realworld/
finish() {
    local facts=$1 p; shift
    for p in "$@"; do
        cap_check "$WORK/$p"
        "$PY" - "$WORK/$facts" "$p" "$WORK/$p.log" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
f.setdefault("tcpdump_log", {})[sys.argv[2]] = open(sys.argv[3]).read()    # the file name as one key
json.dump(f, open(sys.argv[1], "w"), indent=2, sort_keys=True)
open(sys.argv[1], "a").write("\n")
EOF
        PCAPCHECK summary "$WORK/$facts" "$WORK/$p"
        capinfos_check "$WORK/$facts" "$WORK/$p"
        CHK checksums "$WORK/$facts" "$WORK/$p"
    done
    F put "$WORK/$facts" recorded "\"$(date -u +%Y-%m-%dT%H:%M:%SZ) on Linux $(uname -r)\""
    save "$facts" "$@"
}

# finish_derived FACTS PCAP...: as finish, for captures a derive_*.py script wrote (no tcpdump run)
finish_derived() {
    local facts=$1 p; shift
    for p in "$@"; do
        PCAPCHECK summary "$WORK/$facts" "$WORK/$p"
        capinfos_check "$WORK/$facts" "$WORK/$p"
        CHK checksums "$WORK/$facts" "$WORK/$p"
        CHK tshark "$WORK/$facts" ip_checksum_bad "$WORK/$p" "ip.checksum.status == 0" ip.src
        CHK tshark "$WORK/$facts" tcp_checksum_bad "$WORK/$p" "tcp.checksum.status == 0" ip.src
    done
    F put "$WORK/$facts" derived_on "\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
    save "$facts" "$@"
}

# no_client_fin FACTS PCAP: self-check that the client of four_tuple sent no FIN inside the capture
# (the scenarios where the client closes only after the capture stopped)
no_client_fin() {
    CHK fins "$1" "$2"
    "$PY" - "$1" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
t = f["four_tuple"]
k = "%s:%d" % (t["src"], t["sport"])
assert k not in f["fin_check"]["per_sender"], "client %s sent its FIN inside the capture" % k
EOF
}

# need FILE: a committed source capture a derived scenario starts from
need() {
    [[ -s $OUT/$1 ]] || { echo "$1 is missing: record its scenario first" >&2; return 1; }
}
