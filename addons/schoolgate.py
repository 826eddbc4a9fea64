"""mitmproxy addon: enforce the school's social-media policy and log every attempt.

    mitmdump -s addons/schoolgate.py --set schoolgate_config=config/policy.yaml

Thin by design: it asks `Policy` for a decision and hands incidents to `IncidentWriter`.
- Plain HTTP: a blocked request is answered with 403 and the block page; no upstream contact.
- HTTPS: decided on the CONNECT target and on the ClientHello SNI. Allowed connections pass
  through untouched (never decrypted). Blocked ones are refused (`https_block: refuse`), or
  intercepted to show the block page (`https_block: intercept`, needs the mitmproxy CA on devices).
- Where the CONNECT target or SNI and the Host header disagree, either being blocked blocks.
- DNS (`--mode dns@53`): NXDOMAIN for blocked names, recorded with method `DNS`.
- Only clients in the school's networks are answered; the proxy itself serves `/proxy.pac`
  and, to loopback clients, `/schoolgate/status`.
- Only web ports, and never the gateway itself or link-local space (`addons/destinations.py`):
  refused with 403 on the CONNECT target or the request, and again where the name resolves to
  when the server connection is about to open.
"""

import asyncio
import datetime as dt
import gc
import ipaddress
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mitmproxy import connection, ctx, dns, exceptions, http, tls
from mitmproxy.addonmanager import Loader
from mitmproxy.proxy import mode_specs, server_hooks
from sqlalchemy.exc import SQLAlchemyError

from addons import pac, status
from addons.access import ClientAccess, is_loopback
from addons.blockpage import render_block_page
from addons.changes import record_change
from addons.config import default_config_path, load_config
from addons.destinations import CONNECT, HTTP, CheckedNames, Destinations
from addons.dnsanswer import RepeatFilter, is_doh_canary
from addons.errors import ConfigError
from addons.incidents import SchemaTooNew, incident_row, make_engine, prepare_incident_log
from addons.policy import Decision, Policy
from addons.reload import PolicyWatcher, policy_version
from addons.retention import RetentionTimer
from addons.selftest import BLOCKED_HEADER
from addons.writer import QUEUE_LIMIT, IncidentWriter, spill_path

logger = logging.getLogger("schoolgate")


@dataclass
class _Attempt:
    """A blocked connection we intercepted, not yet answered with a block page."""

    decision: Decision
    method: str


@dataclass
class _ClientState:
    """What the addon knows about one client connection between its hooks."""

    user: str | None = None
    refused: bool = False  # its server connection must never be opened
    tunnel: bool = False  # a CONNECT or TLS: its server's port must be one of connect_ports
    pending: _Attempt | None = None  # intercepted; recorded on its first request or at close


class SchoolGate:
    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.writer: IncidentWriter | None = None
        self.watcher: PolicyWatcher | None = None
        self.retention: RetentionTimer | None = None
        self.access: ClientAccess | None = None
        self.destinations: Destinations | None = None
        self.started_at = dt.datetime.now(dt.UTC)
        self.loaded: status.PolicyEvent | None = None  # the policy in force
        self.last_event: status.PolicyEvent | None = None  # the last load, good or refused
        self._dns_recorded = RepeatFilter()
        self._refusals_logged = RepeatFilter()
        self._clients: dict[str, _ClientState] = {}
        self._checked_names = CheckedNames()  # what server names resolved to when checked

    # --- options ---------------------------------------------------------------------------

    def load(self, loader: Loader) -> None:
        loader.add_option(
            "schoolgate_config",
            str,
            default_config_path(),
            "Path to the schoolgate policy file (config/policy.yaml).",
        )
        loader.add_option(
            "schoolgate_watch",
            bool,
            True,
            "Reload the policy within seconds when the config or one of its lists changes.",
        )
        loader.add_option(
            "schoolgate_queue_limit",
            int,
            QUEUE_LIMIT,
            "Incidents held in memory for the database before they are spilled to a file "
            "(read when the incident log is opened: at start, or for a new database).",
        )
        loader.add_option(
            "schoolgate_spill_dir",
            str,
            "",
            "Folder for the file incidents spill to while the database is unavailable "
            "(default: beside the SQLite file, or <config folder>/../data; read when the "
            "incident log is opened).",
        )

    def configure(self, updated: set[str]) -> None:
        if ctx.options.schoolgate_queue_limit < 1:
            raise exceptions.OptionsError("schoolgate_queue_limit must be at least 1")
        if "schoolgate_config" in updated:
            try:
                policy = Policy(load_config(ctx.options.schoolgate_config))
            except ConfigError as e:
                raise exceptions.OptionsError(str(e)) from e
            self._install(policy, policy_version(policy.config), "start")
        if updated & {"schoolgate_config", "schoolgate_watch"}:
            self._watch()

    def _install(self, policy: Policy, version: str, how: str) -> None:
        """Make `policy` the one in force, with a writer for its database; record the version."""
        try:
            prepare_incident_log(policy.config.database)
        except SchemaTooNew as e:
            raise exceptions.OptionsError(f"schoolgate: {e}") from e
        access = ClientAccess(policy.config)
        try:
            access.refuse_open_proxy(_listen_hosts())
        except ValueError as e:
            raise exceptions.OptionsError(f"{policy.config.path}: {e}") from e
        database = policy.config.database
        if self.writer is None or self.writer.engine.url.render_as_string(False) != database:
            try:
                engine = make_engine(database)
                writer = IncidentWriter(
                    engine,
                    spill_path(engine, ctx.options.schoolgate_spill_dir, policy.config.path),
                    queue_limit=ctx.options.schoolgate_queue_limit,
                )
            except (SQLAlchemyError, OSError, ValueError) as e:
                raise exceptions.OptionsError(
                    f"cannot open the incident log {database}: {e}"
                ) from e
            old, self.writer = self.writer, writer  # rows go to the new writer from here on
            if old is not None:
                old.close()  # writes what it holds; first, as the two may share a spill file
            writer.start()
        self.policy = policy  # one assignment: a decision sees the old policy or the new
        self.access = access
        self.destinations = Destinations(policy.config.proxy)
        self.loaded = self.last_event = status.PolicyEvent(
            dt.datetime.now(dt.UTC), how, "loaded", version
        )
        logger.info(
            "schoolgate: policy %s (version %s) loaded at %s, %d list entries, incidents to %s",
            policy.config.path,
            version,
            how,
            policy.index.entries,
            database.split("@")[-1],
        )
        try:
            record_change(
                self.writer.engine,
                site=policy.config.school.site,
                who=f"schoolgate ({how})",
                action="reload",
                reason=f"policy loaded at {how}: {policy.index.entries} list entries",
                policy_version=version,
            )
        except SQLAlchemyError as e:  # the log may be down; the policy applies all the same
            logger.warning("schoolgate: could not record policy version %s: %s", version, e)

    def _watch(self) -> None:
        """(Re)start watching the files of the policy in force, if the option says so."""
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if ctx.options.schoolgate_watch and self.policy is not None:
            self.watcher = PolicyWatcher(self.policy.config, self._reloaded, self._refused)
            self.watcher.start()

    def _reloaded(self, policy: Policy, version: str) -> None:
        """A good edit, built in the watcher's thread: swap it in."""
        try:
            self._install(policy, version, "reload")
        except exceptions.OptionsError as e:
            self._refused(e, version)

    def _refused(self, error: Exception, version: str | None = None) -> None:
        self.last_event = status.PolicyEvent(
            dt.datetime.now(dt.UTC), "reload", "refused", version, str(error)
        )
        logger.error("schoolgate: edit refused, keeping the last good policy: %s", error)

    def running(self) -> None:
        # Never open a connection to a server before the policy has seen the request; and
        # our own access control replaces mitmproxy's blanket refusal of public addresses
        # (some schools' networks are public ranges).
        ctx.options.update(connection_strategy="lazy", block_global=False)
        # A server's name is resolved once, by the destination check; the connection uses that.
        self._checked_names.install(asyncio.get_running_loop())
        gc.freeze()  # long-lived policy objects out of the collector's way: lower p99
        if self.policy is not None and self.policy.config.log_urls == "host":
            # mitmdump would print every request's full URL, allowed ones too, to the log.
            ctx.options.update(flow_detail=0)
        # `configure` has set both: the purge uses the database and retention_days in force.
        self.retention = RetentionTimer(lambda: (self.writer.engine, self.policy.config))
        self.retention.start()

    def done(self) -> None:
        if self.retention is not None:
            self.retention.stop()
        if self.watcher is not None:
            self.watcher.stop()
        if self.writer is not None:
            self.writer.close()

    # --- who may connect -------------------------------------------------------------------

    def client_connected(self, client: connection.Client) -> None:
        # No policy loaded (mitmproxy listens even when the config fails): nobody is allowed.
        if self.access is not None and self.access.allows(client.peername[0]):
            return
        client.error = "schoolgate: not a school network"
        logger.warning(
            "schoolgate: refused %s: not in a group network or allowed_clients", client.peername[0]
        )

    # --- plain HTTP, and requests inside intercepted TLS ------------------------------------

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or self.policy is None:
            return
        if _to_the_proxy(flow):
            flow.response = self._own_page(flow)
            return
        client = flow.client_conn
        state = self._clients.get(client.id)
        user = _proxy_user(flow) or (state.user if state else None)
        hosts = (flow.request.pretty_host, flow.request.host, client.sni)
        decision = self._decide(hosts, client, user)
        if decision.action != "block" and self._refuse_destination(flow, _kind(state)):
            return  # nowhere to go: not a visit to record
        if decision.action == "allow":
            return
        if state is not None:
            state.pending = None  # the page below answers the intercepted attempt
        at = dt.datetime.now(dt.UTC)
        reference = self._record(
            decision,
            client,
            user,
            flow.request.method,
            flow.request.pretty_url,
            flow.request.headers.get("user-agent"),
            at,
        )
        if decision.action == "block":
            flow.response = self._block_page(decision, reference, at, flow.request.pretty_url)

    # --- HTTPS: CONNECT and the TLS ClientHello ----------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.policy is None:
            return
        client = flow.client_conn
        state = self._state(client)
        state.tunnel = True
        user = _proxy_user(flow)
        if user:
            state.user = user
        decision = self._decide((flow.request.host,), client, user)
        if decision.action != "block" and self._refuse_destination(flow, CONNECT):
            return  # nowhere to go: not a visit to record
        if decision.action == "allow":
            return
        if decision.action == "block" and self.policy.config.https_block == "intercept":
            self._state(client).pending = _Attempt(decision, "CONNECT")
            return  # let the tunnel open; the block page is served inside it
        at = dt.datetime.now(dt.UTC)
        user_agent = flow.request.headers.get("user-agent")
        reference = self._record(decision, client, user, "CONNECT", None, user_agent, at)
        if decision.action == "block":
            # Browsers never show a non-2xx CONNECT answer, but curl and scripts do.
            flow.response = self._block_page(decision, reference, at, None)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        if self.policy is None:
            return
        client = data.context.client
        state = self._state(client)
        state.tunnel = True  # TLS in transparent mode: its server is checked as a CONNECT's
        if state.pending is not None:
            return  # a blocked CONNECT we intercept: terminate TLS, serve the block page
        server = data.context.server.address
        hosts = (data.client_hello.sni, server[0] if server else None)
        decision = self._decide(hosts, client, state.user)
        if decision.action == "block" and self.policy.config.https_block == "intercept":
            state.pending = _Attempt(decision, "TLS")
            return
        data.ignore_connection = True  # allowed (or refused below): never decrypted
        if decision.action == "allow" or _same_host(decision, data.context.server):
            return  # allowed, or the CONNECT already recorded this monitored host
        self._record(decision, client, state.user, "TLS", None, None, dt.datetime.now(dt.UTC))
        if decision.action == "block":
            state.refused = True

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        state = self._clients.get(data.client.id)
        server = data.server
        if state is not None and (state.refused or state.pending is not None):
            server.error = "blocked by schoolgate policy"  # closes the client connection
            return
        rules = self.destinations
        if rules is None or server.address is None or _server_set_by_operator(data.client):
            return
        host, port = server.address[:2]
        resolve = self._checked_names.resolve
        try:
            reason, address, resolved = await rules.connection(_kind(state), host, port, resolve)
        except OSError as e:  # the name does not resolve: as mitmproxy's own look-up would fail
            server.error = str(e)
            return
        if reason is not None:
            where = f"{host}:{port}" if address == host else f"{host}:{port} ({address})"
            self._log_refusal(data.client, where, reason)
            server.error = f"the gateway will not connect there: {reason}"
        elif resolved is not None:
            self._checked_names.pin(host, port, resolved)  # connect with these, not a new look-up

    def tls_failed_client(self, data: tls.TlsData) -> None:
        self._record_pending(data.context.client)

    def client_disconnected(self, client: connection.Client) -> None:
        # A connection that completed TLS but sent no request is a browser's preconnect, not
        # an attempt: the request on its sibling connection was recorded.
        if not client.tls_established:
            self._record_pending(client)
        self._clients.pop(client.id, None)

    # --- DNS -------------------------------------------------------------------------------

    def dns_request(self, flow: dns.DNSFlow) -> None:
        question = flow.request.question
        if flow.response or flow.error or not flow.live or self.policy is None or not question:
            return
        if is_doh_canary(question.name):
            flow.response = flow.request.fail(dns.response_codes.NXDOMAIN)
            return
        client = flow.client_conn
        decision = self._decide((question.name,), client, None)
        if decision.action != "block":
            return  # resolved upstream by mitmproxy
        flow.response = flow.request.fail(dns.response_codes.NXDOMAIN)
        if self._dns_recorded.first((client.peername[0], decision.host), time.monotonic()):
            self._record(decision, client, None, "DNS", None, None, dt.datetime.now(dt.UTC))

    # --- the proxy's own pages ---------------------------------------------------------------

    def _own_page(self, flow: http.HTTPFlow) -> http.Response:
        """`/proxy.pac` (and `/wpad.dat`) for clients; `/schoolgate/status` for the gateway."""
        assert self.policy is not None and self.writer is not None
        headers = {"Cache-Control": "no-store"}
        if flow.request.path == status.PATH:
            if not is_loopback(flow.client_conn.peername[0]):
                return http.Response.make(403, b"status is for the gateway itself\n", headers)
            assert self.loaded is not None and self.last_event is not None
            report = status.proxy_status(
                self.policy,
                self.loaded,
                self.last_event,
                self.started_at,
                self.writer.pending,
                self.writer.written,
            )
            body = json.dumps(report, indent=2).encode()
            return http.Response.make(200, body, {**headers, "Content-Type": "application/json"})
        proxy = pac.proxy_address(flow.request.host, flow.request.port)  # as the client said
        text = pac.pac_file(self.policy.config.school.name, proxy, self.policy.config.proxy)
        return http.Response.make(200, text, {**headers, "Content-Type": pac.MEDIA_TYPE})

    # --- helpers ---------------------------------------------------------------------------

    def _state(self, client: connection.Client) -> _ClientState:
        return self._clients.setdefault(client.id, _ClientState())

    def _refuse_destination(self, flow: http.HTTPFlow, kind: str) -> bool:
        """Answer 403, saying why, when the port or the address of the target is refused."""
        assert self.destinations is not None
        request = flow.request
        reason = self.destinations.refusal(kind, request.host, request.port)
        if reason is None:
            return False
        self._log_refusal(flow.client_conn, f"{request.host}:{request.port}", reason)
        flow.response = http.Response.make(
            403,
            f"schoolgate: refused: {reason}\n",
            {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"},
        )
        return True

    def _log_refusal(self, client: connection.Client, destination: str, reason: str) -> None:
        """One line per client, destination and reason a minute: browsers and apps retry.

        Not an incident: the incident log is the record of the social-media policy, and a web
        page can make a browser ask for an odd port without anyone having tried anything.
        """
        ip = client.peername[0] if client.peername else ""
        if self._refusals_logged.first((ip, destination, reason), time.monotonic()):
            logger.warning("schoolgate: refused %s -> %s: %s", ip, destination, reason)

    def _decide(
        self, hosts: Iterable[str | None], client: connection.Client, user: str | None
    ) -> Decision:
        """The strictest decision over every name the client gave for the server.

        Reads the policy once: a reload between two names cannot split one decision.
        """
        policy = self.policy
        assert policy is not None
        ip = client.peername[0] if client.peername else ""
        strictest: Decision | None = None
        for host in hosts:
            if not host:
                continue
            decision = policy.decide(host, ip, user)
            if decision.action == "block":
                return decision
            if strictest is None or strictest.action == "allow":
                strictest = decision
        assert strictest is not None
        return strictest

    def _record(
        self,
        decision: Decision,
        client: connection.Client,
        user: str | None,
        method: str,
        url: str | None,
        user_agent: str | None,
        at: dt.datetime,
    ) -> int:
        assert self.policy is not None and self.writer is not None
        row = incident_row(
            decision,
            site=self.policy.config.school.site,
            client_ip=client.peername[0] if client.peername else "",
            username=user,
            method=method,
            url=url if self.policy.config.log_urls == "url" else None,
            user_agent=user_agent,
            at=at,
            device=self.policy.devices.name_of(client.peername[0]) if client.peername else None,
        )
        # No log line per incident: the table is the record, and under mitmdump every log
        # record is dispatched to every addon, which cost 5-10% of blocked throughput.
        self.writer.add(row)
        return row["id"]

    def _record_pending(self, client: connection.Client) -> None:
        """An intercepted attempt that never reached a request (e.g. the CA is not trusted)."""
        state = self._clients.get(client.id)
        if state is None or state.pending is None:
            return
        attempt, state.pending = state.pending, None
        self._record(
            attempt.decision,
            client,
            state.user,
            attempt.method,
            None,
            None,
            dt.datetime.now(dt.UTC),
        )

    def _block_page(
        self, decision: Decision, reference: int, at: dt.datetime, url: str | None
    ) -> http.Response:
        assert self.policy is not None
        page = render_block_page(self.policy.config.school, decision, reference, at, url)
        return http.Response.make(
            403,
            page,
            {
                "Content-Type": "text/html; charset=utf-8",
                "Cache-Control": "no-store",
                BLOCKED_HEADER: str(reference),  # `schoolgate selftest` tells our 403 from a site's
            },
        )


OWN_PATHS = frozenset({"/proxy.pac", "/wpad.dat", status.PATH})


def _to_the_proxy(flow: http.HTTPFlow) -> bool:
    """A request for one of the proxy's own pages, addressed to the proxy rather than through it.

    The host is the gateway's address, loopback, or a name (the school's DNS points names such
    as wpad.school.example at the gateway): never another server's address.
    """
    request, sockname = flow.request, flow.client_conn.sockname
    if request.port != sockname[1] or request.path not in OWN_PATHS:
        return False
    try:
        ipaddress.ip_address(request.host)
    except ValueError:
        return True
    return request.host == sockname[0] or is_loopback(request.host)


def _listen_hosts() -> list[str]:
    """Every address the proxy listens on, by mitmproxy's options ('' is every address)."""
    default = ctx.options.listen_host
    return [mode_specs.ProxyMode.parse(mode).listen_host(default) for mode in ctx.options.mode]


def _kind(state: _ClientState | None) -> str:
    """Which ports a client connection's server may have: a tunnel's, or plain HTTP's."""
    return CONNECT if state is not None and state.tunnel else HTTP


def _server_set_by_operator(client: connection.Client) -> bool:
    """Whether the mode, not the client, names the server (`--dns-upstream`, the resolver's).

    The school chose that server, on whatever address and port it runs; everywhere else the
    client names it, and the destination rules apply.
    """
    return isinstance(client.proxy_mode, mode_specs.ReverseMode | mode_specs.DnsMode)


def _proxy_user(flow: http.HTTPFlow) -> str | None:
    """The user name from mitmproxy's proxy authentication, when the school turns it on."""
    auth = flow.metadata.get("proxyauth")
    return auth[0] if auth else None


def _same_host(decision: Decision, server: connection.Server) -> bool:
    """True when a CONNECT to this same host was decided (and recorded) already."""
    return server.address is not None and decision.host == server.address[0].lower()


addons = [SchoolGate()]
