#!/bin/sh
# schoolgate transparent mode with iptables (the same rules as nftables.conf).
# Run as root on the gateway: LAN=eth1 PROXY_PORT=8080 sh iptables.sh
# The lists are space-separated ports, as in nftables.conf: GATEWAY_TCP and GATEWAY_UDP on the
# gateway itself, OPEN_TCP and OPEN_UDP to any server (OPEN_TCP="993" OPEN_UDP="123" ...).
# What these chains let through goes back (RETURN) to the rest of INPUT and FORWARD, as an
# nftables table's accept leaves other tables to decide. Running it again replaces the rules. Keep them across reboots with Debian's
# iptables-persistent: netfilter-persistent save
set -eu
LAN="${LAN:-eth1}"
PROXY_PORT="${PROXY_PORT:-8080}"
GATEWAY_TCP="${GATEWAY_TCP-53 8080 $PROXY_PORT}"
GATEWAY_UDP="${GATEWAY_UDP-53 67 547}"
OPEN_TCP="${OPEN_TCP-}"
OPEN_UDP="${OPEN_UDP-123}"
# An empty chain of ours in table $1, named $2, that built-in chain $3 sends the LAN to first.
chain() {
    $table -t "$1" -N "$2" 2>/dev/null || $table -t "$1" -F "$2"
    $table -t "$1" -C "$3" -i "$LAN" -j "$2" 2>/dev/null || $table -t "$1" -I "$3" -i "$LAN" -j "$2"
}
for table in iptables ip6tables; do
    icmp=icmp; [ "$table" = iptables ] || icmp=ipv6-icmp
    chain nat schoolgate-prerouting PREROUTING
    chain filter schoolgate-input INPUT
    chain filter schoolgate-forward FORWARD
    # HTTP and HTTPS to any server go to the proxy on this machine instead.
    $table -t nat -A schoolgate-prerouting -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports "$PROXY_PORT"
    # The LAN to the gateway itself: the proxy, DNS, DHCP and ICMP only.
    $table -A schoolgate-input -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
    for port in $GATEWAY_TCP; do $table -A schoolgate-input -p tcp --dport "$port" -j RETURN; done
    for port in $GATEWAY_UDP; do $table -A schoolgate-input -p udp --dport "$port" -j RETURN; done
    $table -A schoolgate-input -p "$icmp" -j RETURN
    $table -A schoolgate-input -j DROP
    # The LAN to elsewhere: replies, the gateway's services in containers, what the school opened.
    $table -A schoolgate-forward -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
    for port in $GATEWAY_TCP; do $table -A schoolgate-forward -p tcp -m conntrack --ctstate DNAT --ctorigdstport "$port" -j RETURN; done
    for port in $GATEWAY_UDP; do $table -A schoolgate-forward -p udp -m conntrack --ctstate DNAT --ctorigdstport "$port" -j RETURN; done
    # QUIC (HTTP/3) is UDP and the proxy is TCP only: drop it, browsers fall back to TCP.
    # DNS over TLS and over QUIC (853) would go past the school's DNS. Both stay closed.
    $table -A schoolgate-forward -p udp -m multiport --dports 443,853 -j DROP
    $table -A schoolgate-forward -p tcp --dport 853 -j DROP
    for port in $OPEN_TCP; do $table -A schoolgate-forward -p tcp --dport "$port" -j RETURN; done
    for port in $OPEN_UDP; do $table -A schoolgate-forward -p udp --dport "$port" -j RETURN; done
    $table -A schoolgate-forward -j DROP
done
