# Sourced by the live benchmarks (bench/live.sh): two network namespaces
# joined by a veth pair, the client side with many source addresses. Nothing
# is routed out of them. The caller sets `trap netns_down EXIT`.
#
#   server side: namespace $NS_SRV, interface $IF_SRV, $SRV_IP, MAC $SRV_MAC
#   client side: namespace $NS_CLI, interface $IF_CLI, $CLI_IP, and
#                sources 10.77.1.1, 10.77.1.2, ... (netns_up COUNT)

NS_SRV="kb-srv-$$"
NS_CLI="kb-cli-$$"
IF_SRV="kbs$$"
IF_CLI="kbc$$"
SRV_IP=10.77.0.1
CLI_IP=10.77.0.2
# Generated frames are addressed to this MAC, so the server takes them as its own.
SRV_MAC=02:00:00:00:77:01
CLI_MAC=02:00:00:00:77:02

# netns_up COUNT: makes both namespaces and COUNT client source addresses (at most 250).
netns_up() {
  ip netns add "$NS_SRV"
  ip netns add "$NS_CLI"
  ip link add "$IF_SRV" netns "$NS_SRV" address "$SRV_MAC" type veth \
    peer name "$IF_CLI" netns "$NS_CLI" address "$CLI_MAC"
  ip -n "$NS_SRV" addr add "$SRV_IP/16" dev "$IF_SRV"
  ip -n "$NS_CLI" addr add "$CLI_IP/16" dev "$IF_CLI"
  for i in $(seq 1 "$1"); do echo "addr add 10.77.1.$i/16 dev $IF_CLI"; done | ip -n "$NS_CLI" -batch -
  for ns in "$NS_SRV" "$NS_CLI"; do ip -n "$ns" link set lo up; done
  ip -n "$NS_SRV" link set "$IF_SRV" up
  ip -n "$NS_CLI" link set "$IF_CLI" up
}

netns_down() {
  ip netns del "$NS_SRV" 2>/dev/null || true
  ip netns del "$NS_CLI" 2>/dev/null || true
}
