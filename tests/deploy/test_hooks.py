"""The addon's deployment hooks on mitmproxy's own test flows: what a loopback client cannot show.

Who may connect (client_connected), the open-proxy refusal, the proxy's own pages for
non-loopback clients, and DNS answers for a client in a school network. The real proxy runs
the same hooks in test_dns.py, test_pac.py, test_ops.py and test_transparent.py.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mitmproxy import dns, exceptions
from mitmproxy.test import taddons, tflow, tutils

from addons.schoolgate import SchoolGate
from tests.e2e.realparts import write_config

PUPIL = ("10.10.4.2", 50000)  # in the test config's staff network
OUTSIDER = ("192.0.2.7", 50000)


def _dns(name: str, peer: tuple[str, int] = PUPIL, kind: int = dns.types.A) -> tflow.DNSFlow:
    flow = tflow.tdnsflow()
    flow.request.questions[0].name = name
    flow.request.questions[0].type = kind
    flow.client_conn.peername = peer
    return flow


def test_clients_outside_the_school_networks_are_refused(addon):
    gate, _, _ = addon
    inside, outside, local = tflow.tclient_conn(), tflow.tclient_conn(), tflow.tclient_conn()
    inside.peername, outside.peername, local.peername = PUPIL, OUTSIDER, ("::1", 50000)
    for client in (inside, outside, local):
        gate.client_connected(client)
    assert inside.error is None and local.error is None
    assert outside.error is not None


def test_allowed_clients_widen_the_networks(tmp_path: Path):
    gate = SchoolGate()
    config = write_config(tmp_path, extra="allowed_clients: [192.0.2.0/28]")
    with taddons.context(gate) as context:
        context.configure(gate, schoolgate_config=str(config))
        client = tflow.tclient_conn()
        client.peername = OUTSIDER
        gate.client_connected(client)
        assert client.error is None
        gate.done()


def test_never_an_open_proxy(unnetworked_config: Path):
    """No network to allow: loopback only, or the proxy refuses to start."""
    config = unnetworked_config
    public = config.with_name("public.yaml")
    public.write_text(config.read_text())
    gate = SchoolGate()
    with taddons.context(gate) as context:
        context.options.update(listen_host="127.0.0.1")
        context.configure(gate, schoolgate_config=str(config))
        context.options.update(listen_host="0.0.0.0")
        with pytest.raises(exceptions.OptionsError, match=r"refusing to listen on 0\.0\.0\.0"):
            context.configure(gate, schoolgate_config=str(public))
        gate.done()


def test_status_is_for_the_gateway_itself(addon):
    gate, _, _ = addon
    flow = tflow.tflow(req=tutils.treq(host="10.0.0.1", port=8080, path=b"/schoolgate/status"))
    flow.client_conn.sockname = ("10.0.0.1", 8080)
    flow.client_conn.peername = PUPIL
    gate.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 403


def test_the_pac_file_names_the_address_the_device_used(addon):
    gate, _, _ = addon
    flow = tflow.tflow(req=tutils.treq(host="gateway.school.example", port=8080, path=b"/wpad.dat"))
    flow.client_conn.sockname = ("10.0.0.1", 8080)
    flow.client_conn.peername = PUPIL
    gate.requestheaders(flow)
    assert flow.response is not None and flow.response.status_code == 200
    assert b'"PROXY gateway.school.example:8080"' in flow.response.content


def test_pages_of_other_servers_on_the_same_port_are_not_ours(addon):
    gate, _, _ = addon
    flow = tflow.tflow(req=tutils.treq(host="203.0.113.9", port=8080, path=b"/proxy.pac"))
    flow.client_conn.sockname = ("10.0.0.1", 8080)
    flow.client_conn.peername = PUPIL
    gate.requestheaders(flow)
    assert flow.response is None  # passed on to 203.0.113.9


def test_dns_answers_nxdomain_for_blocked_names_and_records_one_incident(addon):
    gate, _, root = addon
    flows = [_dns("www.facebook.com"), _dns("www.facebook.com", kind=dns.types.AAAA)]
    flows.append(_dns("use-application-dns.net"))
    allowed = _dns("www.bbc.co.uk")
    for flow in (*flows, allowed):
        gate.dns_request(flow)
    assert [f.response.response_code for f in flows if f.response] == [
        dns.response_codes.NXDOMAIN
    ] * 3
    assert allowed.response is None  # left to mitmproxy's resolver
    gate.done()
    with sqlite3.connect(root / "data" / "schoolgate.db") as db:
        rows = db.execute("SELECT method, host, url, client_ip, client_group FROM incidents")
        assert rows.fetchall() == [("DNS", "www.facebook.com", None, "10.10.4.2", "staff")]
