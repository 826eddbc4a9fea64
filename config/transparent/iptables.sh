#!/bin/sh
# schoolgate transparent mode with iptables (the same rules as nftables.conf).
# Run as root on the gateway: LAN=eth1 PROXY_PORT=8080 sh iptables.sh
# Keep them across reboots with Debian's iptables-persistent: netfilter-persistent save
set -eu
LAN="${LAN:-eth1}"
PROXY_PORT="${PROXY_PORT:-8080}"
for table in iptables ip6tables; do
    # HTTP and HTTPS to any server go to the proxy on this machine instead.
    $table -t nat -A PREROUTING -i "$LAN" -p tcp -m multiport --dports 80,443 -j REDIRECT --to-ports "$PROXY_PORT"
    # QUIC (HTTP/3) is UDP and the proxy is TCP only: drop it, browsers fall back to TCP.
    $table -A FORWARD -i "$LAN" -p udp --dport 443 -j DROP
done
