"""The addon's hooks on mitmproxy's own test flows: what no loopback client can send.

Transparent mode (the destination is only an IP; the Host header names the site), HTTP/2
connections that carry several hostnames, and a bad config swapped in while running.
The end-to-end tests in `tests/e2e` cover the same addon in a real mitmdump.
"""

from __future__ import annotations

import contextlib
import sqlite3
import ssl
from pathlib import Path

import pytest
from mitmproxy import exceptions, tls
from mitmproxy.proxy import context as proxy_context
from mitmproxy.test import taddons, tflow, tutils

from addons.schoolgate import SchoolGate
from tests.e2e.realparts import write_config


def _flow(host: str, host_header: str | None, client_ip: str = "10.20.0.7") -> tflow.HTTPFlow:
    flow = tflow.tflow(req=tutils.treq(host=host, port=80))
    flow.client_conn.peername = (client_ip, 50000)
    flow.client_conn.sni = None
    if host_header is None:
        del flow.request.headers["host"]
    else:
        flow.request.headers["host"] = host_header
    return flow


def _rows(root: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(root / "data" / "schoolgate.db") as db:
        return db.execute("SELECT method, host, client_ip FROM incidents ORDER BY id").fetchall()


def test_transparent_http_is_decided_by_the_host_header(addon):
    gate, _, root = addon
    blocked = _flow("157.240.221.35", "www.facebook.com")  # a Facebook IP: listed by name only
    gate.requestheaders(blocked)
    assert blocked.response is not None and blocked.response.status_code == 403
    allowed = _flow("157.240.221.35", "www.bbc.co.uk")
    gate.requestheaders(allowed)
    assert allowed.response is None
    gate.done()
    assert _rows(root) == [("GET", "www.facebook.com", "10.20.0.7")]


def test_every_request_on_one_connection_is_decided(addon):
    """HTTP/2 coalesces hostnames on one connection: an allowed SNI must not carry a blocked one."""
    gate, _, _ = addon
    first = _flow("www.bbc.co.uk", "www.bbc.co.uk")
    first.client_conn.sni = "www.bbc.co.uk"
    second = tflow.tflow(client_conn=first.client_conn, req=tutils.treq(host="fbcdn.net"))
    second.request.headers["host"] = "scontent.xx.fbcdn.net"
    gate.requestheaders(first)
    gate.requestheaders(second)
    assert first.response is None
    assert second.response is not None and second.response.status_code == 403


def test_a_bad_config_while_running_keeps_the_last_good_policy(addon):
    gate, context, root = addon
    good = gate.policy
    bad = root / "config" / "broken.yaml"
    bad.write_text("school: [\n")
    with pytest.raises(exceptions.OptionsError, match=f"{bad}:"):
        context.configure(gate, schoolgate_config=str(bad))
    # mitmproxy rolls the option back, so the addon reloads the last good file.
    assert gate.policy is not None and gate.policy.config.path == good.config.path
    flow = _flow("1.2.3.4", "facebook.com")
    gate.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 403


def test_the_queue_limit_reaches_the_writer_and_must_be_positive(tmp_path: Path) -> None:
    gate = SchoolGate()
    with taddons.context(gate) as context:
        config = str(write_config(tmp_path))
        context.configure(gate, schoolgate_queue_limit=5, schoolgate_config=config)
        assert gate.writer is not None and gate.writer.queue_limit == 5
        with pytest.raises(exceptions.OptionsError, match="schoolgate_queue_limit must be at"):
            context.configure(gate, schoolgate_queue_limit=0)
        gate.done()


def test_a_malformed_host_header_in_transparent_mode_gets_400_and_no_incident(addon):
    gate, _, root = addon
    for header in ("www.facebook.com:abc", "www.facebook.com:0", "www.face book.com"):
        flow = _flow("157.240.221.35", header)
        gate.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 400
        assert b"facebook" not in flow.response.content
    gate.done()
    assert not (root / "data" / "schoolgate.db").exists() or _rows(root) == []


def test_an_ip_target_goes_to_the_address_the_policy_decided_on(addon):
    gate, _, _ = addon
    flow = _flow("0xcb007105", "0xcb007105")  # 203.0.113.5
    gate.requestheaders(flow)
    assert flow.response is None and flow.request.host == "203.0.113.5"
    assert flow.request.headers["host"] == "0xcb007105"  # the header goes on as sent


def _client_hello(sni: str | None) -> tls.ClientHello:
    """A real ClientHello, as Python's ssl writes it (no SNI when `sni` is None)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    client = context.wrap_bio(incoming, outgoing, server_hostname=sni)
    with contextlib.suppress(ssl.SSLWantReadError):
        client.do_handshake()
    return tls.ClientHello(outgoing.read()[9:])  # without the record and handshake headers


def _hello(gate: SchoolGate, options, destination: str, sni: str | None) -> tls.ClientHelloData:
    client = tflow.tclient_conn()
    client.peername = ("10.20.0.7", 50000)
    server = tflow.tserver_conn()
    server.address = (destination, 443)
    data = tls.ClientHelloData(proxy_context.Context(client, options), _client_hello(sni))
    data.context.server = server
    gate.tls_clienthello(data)
    return data


def test_a_client_hello_without_sni_to_an_address_is_refused_even_where_blocks_are_intercepted(
    tmp_path: Path,
) -> None:
    gate = SchoolGate()
    with taddons.context(gate) as context:
        config = write_config(tmp_path, https_block="intercept")
        context.configure(gate, schoolgate_config=str(config))
        refused = _hello(gate, context.options, "203.0.113.5", None)
        named = _hello(gate, context.options, "203.0.113.5", "intranet.example.org")
        gate.done()
    assert refused.ignore_connection and gate._clients[refused.context.client.id].refused
    assert named.ignore_connection and not gate._clients[named.context.client.id].refused
    with sqlite3.connect(tmp_path / "data" / "schoolgate.db") as db:
        rows = db.execute("SELECT method, host, rule, category FROM incidents").fetchall()
    assert rows == [("TLS", "203.0.113.5", "tls-without-sni", "tls_without_sni")]
