#!/usr/bin/env bash
# derive_oldkernel.sh IN.pcap OUT.pcap
# Emulate a pre-RFC-5961-challenge-ACK kernel from closewait-reuse.pcap: keep the reusing SYN and its
# first retransmission unanswered, i.e. delete the challenge ACK, the client's RST, and every frame
# after the retry SYN (the SYN-ACK, handshake, data, FIN... of the connection that finally worked).
set -euo pipefail
in=$1 out=$2
mapfile -t syns < <(tshark -r "$in" -Y 'tcp.flags.syn == 1 && tcp.flags.ack == 0' -T fields -e frame.number)
total=$(tshark -r "$in" -T fields -e frame.number | tail -1)
if (( ${#syns[@]} < 3 )); then
    echo "expected >= 3 SYNs in $in (first connect, reusing SYN, retry SYN), got ${#syns[@]}" >&2
    exit 1
fi
reuse=${syns[1]} retry=${syns[2]}
del1="$((reuse + 1))-$((retry - 1))"
del2="$((retry + 1))-$total"
editcap "$in" "$out" "$del1" "$del2"
echo "# closewait-reuse-oldkernel.pcap = editcap closewait-reuse.pcap, deleted frames $del1 and $del2 (of $total)"
echo "# kept: frames 1-$reuse unchanged; original frame $retry (retry SYN) is frame $((reuse + 1)) in the derived file"
echo "# deleted frames of closewait-reuse.pcap:"
tshark -r "$in" -Y "(frame.number >= $((reuse + 1)) && frame.number <= $((retry - 1))) || frame.number > $retry" \
    -T fields -e frame.number -e tcp.srcport -e tcp.dstport -e tcp.flags.str -e tcp.seq_raw -e tcp.ack_raw -e tcp.len \
    | sed 's/^/#   /'
