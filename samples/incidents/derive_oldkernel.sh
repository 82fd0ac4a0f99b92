#!/usr/bin/env bash
# derive_oldkernel.sh IN.pcap OUT.pcap
# Emulate, from closewait-reuse.pcap, a kernel on which the reusing SYN simply goes unanswered
# (no RFC 5961 challenge ACK, or the challenge ACK dropped on the way): delete the challenge ACK and
# the client's RST, keep the retry SYN, delete everything after it (the handshake, data and FIN of the
# connection that finally worked). The retry SYN is moved to 1.000 s after the reusing SYN, which is
# when an unanswered SYN is retransmitted (initial RTO 1 s); in the original it left only 2 jiffies
# after the RST because Linux >= 5.6 re-arms the SYN timer with TCP_TIMEOUT_MIN after a bad ACK.
set -euo pipefail
in=$1 out=$2
ts() { tshark -r "$in" "$@" 2>/dev/null; }
mapfile -t syns < <(ts -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e frame.number)
total=$(ts -T fields -e frame.number | tail -1)
if (( ${#syns[@]} < 3 )); then
    echo "expected >= 3 SYNs in $in (first connect, reusing SYN, retry SYN), got ${#syns[@]}" >&2
    exit 1
fi
reuse=${syns[1]} retry=${syns[2]}
t_reuse=$(ts -Y "frame.number == $reuse" -T fields -e frame.time_epoch)
t_retry=$(ts -Y "frame.number == $retry" -T fields -e frame.time_epoch)
shift_s=$(python3 -c "print('%.6f' % ($t_reuse + 1.0 - $t_retry))")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
editcap -F pcap -r "$in" "$tmp/a.pcap" "1-$reuse"
editcap -F pcap -r -t "$shift_s" "$in" "$tmp/b.pcap" "$retry"
mergecap -F pcap -a -w "$out" "$tmp/a.pcap" "$tmp/b.pcap"
echo "# closewait-reuse-oldkernel.pcap, derived from closewait-reuse.pcap ($total frames) by derive_oldkernel.sh:"
echo "#   kept frames 1-$reuse unchanged (frame $reuse = the SYN reusing port 40001)"
echo "#   deleted frames $((reuse + 1))-$((retry - 1)) (challenge ACK, client RST) and $((retry + 1))-$total (the connection that worked)"
echo "#   kept frame $retry (retry SYN) as frame $((reuse + 1)), time shifted by ${shift_s} s to 1.000 s after frame $reuse"
echo "# deleted frames of closewait-reuse.pcap (frame, sport, dport, flags, seq, ack, len):"
ts -Y "(frame.number > $reuse && frame.number < $retry) || frame.number > $retry" \
    -T fields -e frame.number -e tcp.srcport -e tcp.dstport -e tcp.flags.str -e tcp.seq_raw -e tcp.ack_raw -e tcp.len \
    | sed 's/^/#   /'
