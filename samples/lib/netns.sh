# Shared helpers for the sample recorders: network namespaces, veth pairs, bridges, captures.
# Source this file; every namespace and link it creates is removed by `ns_cleanup` (installed as an
# EXIT trap by `ns_init`). All names carry the prefix $NS_PREFIX so concurrent recorders don't collide.
#
#   ns_init PREFIX            start a session; namespaces are called ${PREFIX}-NAME
#   ns_add NAME               create namespace NAME with lo up
#   ns_exec NAME CMD...       run CMD inside NAME
#   ns_veth A IFA B IFB       veth pair: IFA in namespace A, IFB in namespace B (both up)
#   ns_bridge NAME BR         a bridge BR inside namespace NAME (up)
#   ns_capture NAME IF FILE [ARGS...]   start tcpdump in NAME on IF writing FILE; returns when listening
#   ns_capture_stop           stop every capture started by ns_capture and wait for the files to flush

set -euo pipefail

NS_PREFIX=""
NS_LIST=()
NS_CAPTURE_PIDS=()

ns_init() {
    NS_PREFIX="$1"
    trap ns_cleanup EXIT
}

ns_name() { echo "${NS_PREFIX}-$1"; }

ns_add() {
    local ns; ns=$(ns_name "$1")
    ip netns del "$ns" 2>/dev/null || true
    ip netns add "$ns"
    NS_LIST+=("$ns")
    ip netns exec "$ns" ip link set lo up
}

ns_exec() {
    local ns; ns=$(ns_name "$1"); shift
    ip netns exec "$ns" "$@"
}

ns_veth() {
    local a b; a=$(ns_name "$1"); b=$(ns_name "$3")
    ip link add "$2" netns "$a" type veth peer name "$4" netns "$b"
    ip netns exec "$a" ip link set "$2" up
    ip netns exec "$b" ip link set "$4" up
}

ns_bridge() {
    local ns; ns=$(ns_name "$1")
    ip netns exec "$ns" ip link add "$2" type bridge
    ip netns exec "$ns" ip link set "$2" up
}

ns_capture() {
    local ns file ifc; ns=$(ns_name "$1"); ifc="$2"; file="$3"; shift 3
    # --immediate-mode: without it tcpdump may hold the last second of packets when stopped.
    ip netns exec "$ns" tcpdump --immediate-mode -U -n -i "$ifc" -w "$file" "$@" 2>"$file.log" &
    NS_CAPTURE_PIDS+=("$!")
    # tcpdump prints "listening on" once the socket is open; wait for it so no packet is missed.
    for _ in $(seq 100); do
        grep -q "listening on" "$file.log" 2>/dev/null && break
        sleep 0.05
    done
}

ns_capture_stop() {
    sleep 0.3
    local pid
    for pid in "${NS_CAPTURE_PIDS[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
    for pid in "${NS_CAPTURE_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    NS_CAPTURE_PIDS=()
}

ns_cleanup() {
    local pid ns
    for pid in "${NS_CAPTURE_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ns in "${NS_LIST[@]}"; do
        ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
}
