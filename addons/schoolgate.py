"""mitmproxy addon: enforce the school's social-media policy and log every attempt.

    mitmdump -s addons/schoolgate.py --set schoolgate_config=config/policy.yaml

Thin by design: it asks `Policy` for a decision and hands incidents to `IncidentWriter`.
- Plain HTTP: decided on the request head; a blocked request is answered with 403 and the block
  page at once (its body, if any, dropped as it arrives); no upstream contact.
- HTTPS: decided on the CONNECT target and on the ClientHello SNI. Allowed connections pass
  through untouched (never decrypted). Blocked ones are refused (`https_block: refuse`), or
  intercepted to show the block page (`https_block: intercept`, needs the mitmproxy CA on devices).
- Where the CONNECT target or SNI and the Host header disagree, either being blocked blocks.
- Before any decision, every host is read as the client's OS would connect to it
  (`addons.hosts`): a malformed Host header, URL authority or CONNECT target gets 400. An IP
  target is relayed to its canonical address, the one the policy decided on.
- HTTPS to a bare IP address without SNI is refused while a blocking rule applies
  (`proxy.allow_tls_without_sni` names the groups that may).
- DNS (`--mode dns@53`): NXDOMAIN for blocked names, recorded with method `DNS`; no data for
  `_dns.resolver.arpa`, so devices find no encrypted resolver to upgrade to (RFC 9462).
- Only clients in the school's networks are answered; the proxy itself serves `/proxy.pac`
  and, to loopback clients, `/schoolgate/status`.
- No byte is relayed before it is decided: a connection's first bytes must become a complete
  ClientHello or request head (`addons/firstbytes.py`); raw TCP only to `proxy.raw_tcp`.
- A connection that sends no complete request head in time is closed (`addons/deadlines.py`).
- Only web ports, and never the gateway itself (in any spelling, its own port above all) or
  link-local space (`addons/destinations.py`): refused with 403 on the CONNECT target or the
  request, and again where the name resolves to when the server connection is about to open.
"""

import asyncio
import datetime as dt
import gc
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from mitmproxy import connection, ctx, dns, exceptions, http, tls
from mitmproxy.addonmanager import Loader
from mitmproxy.net.http.http1 import expected_http_body_size
from mitmproxy.proxy import commands, events, layer, layers, mode_specs, server_hooks
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.server import ConnectionHandler
from mitmproxy.utils import asyncio_utils
from sqlalchemy.exc import SQLAlchemyError

from addons import firstbytes, pac, status
from addons.access import ClientAccess, is_loopback
from addons.blockpage import render_block_page
from addons.changes import record_change
from addons.config import ProxyConfig, default_config_path, load_config
from addons.deadlines import HEAD, IDLE, Deadlines
from addons.destinations import CONNECT, HTTP, CheckedNames, Destinations
from addons.dnsanswer import RepeatFilter, is_ddr_query, is_doh_canary
from addons.errors import ConfigError
from addons.hosts import ip_address_of, normalise, parse_authority
from addons.incidents import SchemaTooNew, incident_row, make_engine, prepare_incident_log
from addons.policy import Decision, Policy
from addons.redact import UrlFilter
from addons.reload import PolicyWatcher, policy_version
from addons.retention import RetentionTimer
from addons.selftest import BLOCKED_HEADER
from addons.sink import Sink
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
        self._refusals = RepeatFilter()  # (client, reason): logged or recorded once a minute
        self._raw_refusals = RepeatFilter()  # connections refused for their first bytes
        self._refusals_logged = RepeatFilter()  # (client, destination, reason): logged once
        self._clients: dict[str, _ClientState] = {}  # open connections only: popped at close
        self._checked_names = CheckedNames()  # what server names resolved to when checked
        self.deadlines = Deadlines(self._expired)
        self._sweeper: asyncio.Task[None] | None = None
        self.sink = Sink()
        self._url_filter = UrlFilter(self._hides_urls)

    # --- options ---------------------------------------------------------------------------

    def load(self, loader: Loader) -> None:
        for handler in logging.getLogger().handlers:  # mitmproxy's error lines too
            handler.addFilter(self._url_filter)
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
        self.destinations = Destinations(policy.config.proxy, proxy_ports=_listen_ports())
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

    async def running(self) -> None:
        # Never open a connection to a server before the policy has seen the request; never
        # relay raw TCP on a guess (`next_layer` allows what `proxy.raw_tcp` lists); and our
        # own access control replaces mitmproxy's blanket refusal of public addresses (some
        # schools' networks are public ranges).
        ctx.options.update(connection_strategy="lazy", block_global=False, rawtcp=False)
        # A server's name is resolved once, by the destination check; the connection uses that.
        self._checked_names.install(asyncio.get_running_loop())
        gc.freeze()  # long-lived policy objects out of the collector's way: lower p99
        if self.policy is not None and self.policy.config.log_urls == "host":
            # mitmdump would print every request's full URL, allowed ones too, to the log.
            ctx.options.update(flow_detail=0)
        await self.sink.start()
        self._sweeper = asyncio_utils.create_task(
            self.deadlines.run(), name="schoolgate deadlines", keep_ref=True
        )
        # `configure` has set both: the purge uses the database and retention_days in force.
        self.retention = RetentionTimer(lambda: (self.writer.engine, self.policy.config))
        self.retention.start()

    def done(self) -> None:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._url_filter)
        self.sink.close()
        if self._sweeper is not None:
            self._sweeper.cancel()
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
            if _first_bytes_decided(client):
                self.deadlines.expect(client.id, self._timeouts()[0], HEAD)
            return
        client.error = "schoolgate: not a school network"
        logger.warning(
            "schoolgate: refused %s: not in a group network or allowed_clients", client.peername[0]
        )

    # --- the first bytes of a connection, a tunnel, or decrypted TLS ------------------------

    def next_layer(self, nextlayer: layer.NextLayer) -> None:
        # Script addons run before mitmproxy's NextLayer, which picks a layer from whatever
        # arrived first (a raw TCP relay when it looks like nothing): decide here instead.
        context = nextlayer.context
        if nextlayer.layer is not None or not _first_bytes_decided(context.client):
            return
        kind = firstbytes.classify(nextlayer.data_client())
        if kind is firstbytes.Kind.MORE:
            nextlayer.layer = _AwaitFirstBytes(context)  # asks again once they are decidable
        elif kind is firstbytes.Kind.HTTP:
            _drop_blank_lines(nextlayer)  # NextLayer then picks HTTP (rawtcp is off)
        elif kind is firstbytes.Kind.OTHER:
            if self._raw_tcp_listed(context.server.address):
                self.deadlines.clear(context.client.id)
                nextlayer.layer = layers.TCPLayer(context)
            else:
                self._refuse_raw(context)
                nextlayer.layer = _Closed(context)

    # --- plain HTTP, and requests inside intercepted TLS ------------------------------------

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        # Decided on the head, before mitmproxy reads a byte of the body: a blocked upload is
        # answered at once and its body dropped, never held in memory.
        self.deadlines.request_started(flow.client_conn.id)
        if flow.response or flow.error or not flow.live or self.policy is None:
            return
        screened = self._screen(flow)
        if isinstance(screened, http.Response):
            self._answer(flow, screened)
            return
        client = flow.client_conn
        state = self._clients.get(client.id)
        user = _proxy_user(flow) or (state.user if state else None)
        decision = self._decide((*screened, client.sni), client, user)
        if decision.action != "block" and (refused := self._refused_destination(flow, state)):
            self._answer(flow, refused)
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
            self._answer(flow, self._block_page(decision, reference, at, flow.request.pretty_url))

    def response(self, flow: http.HTTPFlow) -> None:
        answer = flow.metadata.pop(_ANSWER, None)
        if answer is not None:
            flow.response = answer  # in place of the sink's stand-in answer
        self.deadlines.request_finished(flow.client_conn.id, self._timeouts()[1])

    def error(self, flow: http.HTTPFlow) -> None:
        self.deadlines.request_finished(flow.client_conn.id, self._timeouts()[1])

    def websocket_start(self, flow: http.HTTPFlow) -> None:
        self.deadlines.clear(flow.client_conn.id)  # a tunnel now: mitmproxy's tcp_timeout

    # --- HTTPS: CONNECT and the TLS ClientHello ----------------------------------------------

    def http_connect(self, flow: http.HTTPFlow) -> None:
        if self.policy is None:
            return
        client = flow.client_conn
        state = self._state(client)
        state.tunnel = True
        user = _proxy_user(flow)
        try:
            host = parse_authority(flow.request.authority)[0]
        except ValueError as e:
            flow.response = self._malformed(client, "CONNECT target", e)
            return
        _connect_to(flow.request, host)
        if user:
            state.user = user
        # The tunnel's first bytes (a ClientHello) are due within head_timeout, as a request's.
        self.deadlines.expect(client.id, self._timeouts()[0], HEAD)
        decision = self._decide((host,), client, user)
        if decision.action != "block" and (refused := self._refused_destination(flow, state)):
            flow.response = refused
            return  # nowhere to go: not a visit to record
        if decision.action == "allow":
            return
        if decision.action == "block" and self.policy.config.https_block == "intercept":
            state.pending = _Attempt(decision, "CONNECT")
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
        destination = normalise(server[0]) if server else None
        sni = data.client_hello.sni
        if destination and ip_address_of(destination) and not _names_a_site(sni):
            decision = self.policy.decide_without_sni(destination, client.peername[0], state.user)
        else:
            decision = self._decide((sni, destination), client, state.user)
        intercept = self.policy.config.https_block == "intercept" and decision.defence is None
        if decision.action == "block" and intercept:
            state.pending = _Attempt(decision, "TLS")
            return
        data.ignore_connection = True  # allowed (or refused below): never decrypted
        self.deadlines.clear(client.id)  # a tunnel now: mitmproxy's tcp_timeout
        if decision.action == "allow" or _same_host(decision, data.context.server):
            return  # allowed, or the CONNECT already recorded this monitored host
        self._record(decision, client, state.user, "TLS", None, None, dt.datetime.now(dt.UTC))
        if decision.action == "block":
            state.refused = True

    async def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if data.server.address == self.sink.address:
            return  # the stand-in for an answer already decided (see `_answer`)
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
        self.deadlines.forget(client.id)

    # --- DNS -------------------------------------------------------------------------------

    def dns_request(self, flow: dns.DNSFlow) -> None:
        question = flow.request.question
        if flow.response or flow.error or not flow.live or self.policy is None or not question:
            return
        if is_doh_canary(question.name):
            flow.response = flow.request.fail(dns.response_codes.NXDOMAIN)
            return
        if is_ddr_query(question.name):
            flow.response = flow.request.succeed([])  # NODATA: no resolver to upgrade to
            return
        client = flow.client_conn
        decision = self._decide((normalise(question.name),), client, None)
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
        host = pac.gateway_host(flow.request.host, flow.client_conn.sockname[0])
        proxy = pac.proxy_address(host, flow.request.port)
        text = pac.pac_file(self.policy.config.school.name, proxy, self.policy.config.proxy)
        return http.Response.make(200, text, {**headers, "Content-Type": pac.MEDIA_TYPE})

    # --- before any decision: what the request names ----------------------------------------

    def _screen(self, flow: http.HTTPFlow) -> http.Response | tuple[str, ...]:
        """Read a request's target before anything is decided (from `request`, or from
        `requestheaders`): the canonical hosts it names, its Host header's and the one it goes
        to; or the answer when it must go no further: 400 (malformed), or the proxy's own page.
        An IP target is relayed to its canonical address."""
        request, client = flow.request, flow.client_conn
        try:
            header, target = _request_hosts(request)
        except ValueError as e:
            return self._malformed(client, "Host header or request target", e)
        if _to_the_proxy(flow, target):
            return self._own_page(flow)
        _connect_to(request, target)
        return (target,) if header is None or header == target else (header, target)

    def _malformed(self, client: connection.Client, what: str, error: ValueError) -> http.Response:
        """400 for a host that cannot be read: nothing malformed is relayed. Not an incident
        (nothing was asked for); logged once per client a minute, without the text sent."""
        ip = client.peername[0] if client.peername else ""
        if self._refusals.first((ip, "malformed"), time.monotonic()):
            logger.warning(
                "schoolgate: 400 to %s: malformed %s: %s (more this minute are not logged)",
                ip,
                what,
                error,
            )
        return _refusal_page(400, f"malformed {what}: {error}")

    # --- helpers ---------------------------------------------------------------------------

    def _state(self, client: connection.Client) -> _ClientState:
        return self._clients.setdefault(client.id, _ClientState())

    def _timeouts(self) -> tuple[int, int]:
        """`proxy.head_timeout` and `proxy.idle_timeout` of the policy in force."""
        proxy = self.policy.config.proxy if self.policy is not None else ProxyConfig
        return proxy.head_timeout, proxy.idle_timeout

    def _expired(self, client_id: str, what: str) -> None:
        """A connection's deadline passed: close it, unless a response is still being sent."""
        handler = ctx.master.addons.get("proxyserver").connections.get(client_id)
        if handler is None:
            return
        if what == IDLE and _still_sending(handler):
            self.deadlines.expect(client_id, self._timeouts()[1], IDLE)
            return
        # mitmproxy's own close for an idle connection ("Closing connection due to inactivity").
        asyncio_utils.create_task(handler.on_timeout(), name="schoolgate deadline", keep_ref=True)

    def _answer(self, flow: http.HTTPFlow, answer: http.Response) -> None:
        """Answer `flow` now, even while its body is still to come.

        mitmproxy reads a whole body before it sends an addon's answer, so a body that follows
        is streamed into nothing, towards the sink, which answers at once; `response` puts
        `answer` in place of the sink's, and it goes out while the client is still sending.
        """
        request = flow.request
        if self.sink.address is None or not _body_follows(request):
            flow.response = answer
            return
        if not (request.is_http2 or request.is_http3):
            answer.headers["Connection"] = "close"  # the rest of this body is the last
        flow.metadata[_ANSWER] = answer
        request.headers.pop("Expect", None)  # no "100 Continue": the client may keep its body
        request.stream = _dropped
        request.scheme = "http"
        request.host, request.port = self.sink.address

    def _raw_tcp_listed(self, address: tuple[str, int] | None) -> bool:
        """Whether `proxy.raw_tcp` lets the gateway relay undecidable bytes to `address`."""
        if address is None or self.policy is None:
            return False
        return (normalise(address[0]), address[1]) in self.policy.config.proxy.raw_tcp

    def _refuse_raw(self, context: Context) -> None:
        """Record a refused connection once a minute per client and destination: an incident
        (method TCP) where the policy blocks a name it gave, else a log line."""
        client, address = context.client, context.server.address
        state = self._clients.get(client.id)
        if state is not None and state.pending is not None:
            return  # an intercepted CONNECT to a blocked host: recorded when it closes
        ip = client.peername[0]
        where = f"{address[0]}:{address[1]}" if address else "the proxy itself"
        if not self._raw_refusals.first((ip, where), time.monotonic()):
            return
        user = state.user if state else None
        names = (client.sni, address[0] if address else None)
        decision = self._decide(names, client, user) if any(names) else None
        if decision is not None and decision.action == "block":
            self._record(decision, client, user, "TCP", None, None, dt.datetime.now(dt.UTC))
            return
        logger.warning(
            "schoolgate: refused a connection from %s to %s: its first bytes were neither a "
            "TLS ClientHello nor an HTTP request (raw TCP goes only where proxy.raw_tcp says)",
            ip,
            where,
        )

    def _hides_urls(self) -> bool:
        return self.policy is None or self.policy.config.log_urls == "host"

    def _refused_destination(
        self, flow: http.HTTPFlow, state: _ClientState | None
    ) -> http.Response | None:
        """403, saying why, when the port or the address of the target is refused."""
        assert self.destinations is not None
        request = flow.request
        reason = self.destinations.refusal(_kind(state), request.host, request.port)
        if reason is None:
            return None
        self._log_refusal(flow.client_conn, f"{request.host}:{request.port}", reason)
        return _refusal_page(403, reason)

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
_ANSWER = "schoolgate.answer"  # flow.metadata: the answer that replaces the sink's
# Proxy modes whose spec names the protocol (a string test: isinstance on them costs ~1.5 us).
_NAMED = frozenset({mode_specs.ReverseMode.type_name, mode_specs.DnsMode.type_name})


class _AwaitFirstBytes(layer.NextLayer):
    """mitmproxy's NextLayer, asking for a decision only once the client's bytes are decidable:
    a complete ClientHello or request head, or bytes that can become neither."""

    def _ask(self) -> layer.CommandGenerator[None]:
        if firstbytes.classify(self.data_client()) is not firstbytes.Kind.MORE:
            yield from super()._ask()


class _Closed(layer.Layer):
    """Where bytes the gateway will not relay go: nowhere. Closes the client's connection."""

    closed = False

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if self.closed:
            return
        self.closed = True
        yield commands.CloseConnection(self.context.client)


def _first_bytes_decided(client: connection.Client) -> bool:
    """Whether the addon decides this connection's protocol from its first bytes (a reverse
    proxy's spec names it; DNS mode is DNS)."""
    return client.transport_protocol == "tcp" and client.proxy_mode.type_name not in _NAMED


def _drop_blank_lines(nextlayer: layer.NextLayer) -> None:
    """Remove the empty lines before a request line from the bytes mitmproxy will parse (its
    HTTP/1 reader skips one, then waits for more bytes that may never come)."""
    skip = firstbytes.blank_prefix(nextlayer.data_client())
    client = nextlayer.context.client
    kept: list[events.Event] = []
    for event in nextlayer.events:
        if skip and isinstance(event, events.DataReceived) and event.connection == client:
            cut = min(skip, len(event.data))
            skip -= cut
            if cut == len(event.data):
                continue
            event = events.DataReceived(event.connection, event.data[cut:])
        kept.append(event)
    nextlayer.events[:] = kept


def _body_follows(request: http.Request) -> bool:
    """Whether a body is still to come after this request head."""
    if request.is_http2 or request.is_http3:
        return (
            request.method not in ("GET", "HEAD") and request.headers.get("content-length") != "0"
        )
    return expected_http_body_size(request) != 0


def _dropped(chunk: bytes) -> tuple[bytes, ...]:
    """A request body's pieces after its answer: none goes on."""
    return ()


def _still_sending(handler: ConnectionHandler) -> bool:
    """Whether mitmproxy is still writing a response to the client (a big download)."""
    io = handler.transports.get(handler.client)
    transport = getattr(io.writer, "transport", None) if io is not None else None
    return transport is not None and transport.get_write_buffer_size() > 0


def _to_the_proxy(flow: http.HTTPFlow, target: str) -> bool:
    """A request for one of the proxy's own pages, addressed to the proxy rather than through it.

    The host is the gateway's address or loopback, spelled as `ipaddress` spells it, or a name
    (the school's DNS points names such as wpad.school.example at the gateway): never another
    server's address, nor the gateway's own in another spelling (`2130706433`), which is a
    chain into itself and refused as one.
    """
    request, sockname = flow.request, flow.client_conn.sockname
    if request.port != sockname[1] or request.path not in OWN_PATHS:
        return False
    if ip_address_of(target) is None:
        return True
    return request.host == target and (target == normalise(sockname[0]) or is_loopback(target))


def _request_hosts(request: http.Request) -> tuple[str | None, str]:
    """(the Host header's host, the host the request goes to), canonical; ValueError when the
    Host header (or HTTP/2 authority) or the target is malformed, or Host is sent twice."""
    if len(request.headers.get_all("host")) > 1:
        raise ValueError("more than one Host header")
    header = request.host_header
    return (
        parse_authority(header)[0] if header is not None else None,
        parse_authority(request.host)[0],
    )


def _connect_to(request: http.Request, host: str) -> None:
    """Relay to the canonical address of an IP target (`0x08080808` -> 8.8.8.8): the one the
    policy decided on, whatever the resolver would make of another spelling (`1.1.1.1.`)."""
    if request.host != host and ip_address_of(host) is not None:
        request.data.host = host  # the target only: the Host header goes on as sent


def _names_a_site(sni: str | None) -> bool:
    """Whether a ClientHello's SNI names a site: present, a host name, and not an IP address
    (which says no more than the destination does)."""
    if not sni:
        return False
    try:
        host, port = parse_authority(sni)
    except ValueError:
        return False
    return port is None and ip_address_of(host) is None


def _refusal_page(status_code: int, reason: str) -> http.Response:
    """A short plain-text answer saying why (the reason never repeats what the client sent)."""
    title = "Bad Request" if status_code == 400 else "Forbidden"
    return http.Response.make(
        status_code,
        f"{status_code} {title}: schoolgate refused this request: {reason}\n",
        {
            "Content-Type": "text/plain; charset=utf-8",
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
            "Connection": "close",
        },
    )


def _listen_hosts() -> list[str]:
    """Every address the proxy listens on, by mitmproxy's options ('' is every address)."""
    specs = [mode_specs.ProxyMode.parse(mode) for mode in ctx.options.mode]
    return [spec.listen_host(ctx.options.listen_host) for spec in specs]


def _listen_ports() -> list[int]:
    """The port of every listener, by mitmproxy's options: a request to one loops."""
    specs = [mode_specs.ProxyMode.parse(mode) for mode in ctx.options.mode]
    return [port for spec in specs if (port := spec.listen_port(ctx.options.listen_port))]


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
    if decision.defence is not None or server.address is None:
        return False  # the gateway's own rules decide on the ClientHello, not the CONNECT
    return decision.host == normalise(server.address[0])


addons = [SchoolGate()]
