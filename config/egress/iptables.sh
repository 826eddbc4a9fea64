#!/bin/sh
# schoolgate explicit mode with iptables (the same rules as nftables.conf).
# Run as root on the school's router: CLIENTS="eth1 eth2" GATEWAY=10.0.0.1 sh iptables.sh
# The lists are space-separated, as in nftables.conf: CLIENTS (interfaces), RESOLVERS and
# SCHOOL_NETWORKS (IPv4 addresses and networks), OPEN_TCP and OPEN_UDP (ports).
# What the chain lets through goes back (RETURN) to the rest of FORWARD, as an nftables
# table's accept leaves other tables to decide. Running it again replaces the rules.
# Keep them across reboots with Debian's iptables-persistent: netfilter-persistent save
set -eu
CLIENTS="${CLIENTS:-eth1}"
GATEWAY="${GATEWAY:-10.0.0.1}"
PROXY_PORT="${PROXY_PORT:-8080}"
RESOLVERS="${RESOLVERS-$GATEWAY}"
SCHOOL_NETWORKS="${SCHOOL_NETWORKS-10.0.0.0/8 172.16.0.0/12 192.168.0.0/16}"
OPEN_TCP="${OPEN_TCP-}"
OPEN_UDP="${OPEN_UDP-123}"
for table in iptables ip6tables; do
    # The addresses are IPv4: over IPv6, the clients reach none of them.
    resolvers=$RESOLVERS gateway=$GATEWAY networks=$SCHOOL_NETWORKS
    [ "$table" = iptables ] || resolvers= gateway= networks=
    $table -N schoolgate-egress 2>/dev/null || $table -F schoolgate-egress
    for lan in $CLIENTS; do
        $table -C FORWARD -i "$lan" -j schoolgate-egress 2>/dev/null || $table -I FORWARD -i "$lan" -j schoolgate-egress
    done
    # Replies, and ICMP errors about the clients' own connections.
    $table -A schoolgate-egress -m conntrack --ctstate ESTABLISHED,RELATED -j RETURN
    # DNS to the school's resolvers only; DNS over TLS and over QUIC (853) nowhere.
    for ip in $resolvers; do
        $table -A schoolgate-egress -p udp -d "$ip" --dport 53 -j RETURN
        $table -A schoolgate-egress -p tcp -d "$ip" --dport 53 -j RETURN
    done
    $table -A schoolgate-egress -p udp -m multiport --dports 53,853 -j DROP
    $table -A schoolgate-egress -p tcp -m multiport --dports 53,853 -j DROP
    for ip in $gateway; do $table -A schoolgate-egress -p tcp -d "$ip" --dport "$PROXY_PORT" -j RETURN; done
    for net in $networks; do $table -A schoolgate-egress -d "$net" -j RETURN; done
    # The web anywhere else only through the gateway: HTTP, HTTPS and QUIC (HTTP/3, udp 443).
    $table -A schoolgate-egress -p tcp -m multiport --dports 80,443 -j DROP
    $table -A schoolgate-egress -p udp --dport 443 -j DROP
    for port in $OPEN_TCP; do $table -A schoolgate-egress -p tcp --dport "$port" -j RETURN; done
    for port in $OPEN_UDP; do $table -A schoolgate-egress -p udp --dport "$port" -j RETURN; done
    $table -A schoolgate-egress -j DROP
done
