"""`--email` against a real SMTP server (aiosmtpd on a loopback port), reading what arrives."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword

from reports.cli import main
from tests.report.conftest import W43, Log

PASSWORD = "correct horse battery staple"


class Inbox:
    """An aiosmtpd handler that keeps every message it is sent."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def message(self) -> EmailMessage:
        [envelope] = self.envelopes
        content = envelope.content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        return message


def _login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        b"schoolgate",
        PASSWORD.encode(),
    )
    return AuthResult(success=ok)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, int]]:
    """A real SMTP server on loopback that wants a login (without TLS, for the test)."""
    handler, port = Inbox(), _free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, authenticator=_login, auth_require_tls=False
    )
    controller.start()
    yield handler, port
    controller.stop()


def _config(log: Log, port: int) -> str:
    smtp = (
        f"{{host: 127.0.0.1, port: {port}, starttls: false, username: schoolgate, "
        "password_env: TEST_SMTP_PASSWORD, from: schoolgate@school.example}"
    )
    log.config(
        f"report:\n  recipients: [slt@school.example, head@school.example]\n  smtp: {smtp}\n"
    )
    return str(log.config_path)


@pytest.fixture
def mailed(
    log: Log, w43: W43, inbox: tuple[Inbox, int], monkeypatch: pytest.MonkeyPatch
) -> tuple[Inbox, str]:
    """The hand-counted week, and a config whose report.smtp is the test's server."""
    handler, port = inbox
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    return handler, _config(log, port)


@pytest.mark.parametrize("log", ["sqlite"], indirect=True)
def test_the_report_arrives_as_text_and_html(
    mailed: tuple[Inbox, str], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, config = mailed
    status = main(
        ["report", "--config", config, "--week", "2026-W43", "--format", "json", "--email"]
    )
    out, err = capsys.readouterr()
    assert status == 0
    assert err == "sent to slt@school.example, head@school.example\n"
    assert '"attempts": 9' in out  # the --format output is still written
    [envelope] = handler.envelopes
    assert envelope.mail_from == "schoolgate@school.example"
    assert envelope.rcpt_tos == ["slt@school.example", "head@school.example"]
    message = handler.message()
    assert message["Subject"] == (
        "CONFIDENTIAL: Test Primary School, social-media policy weekly report, 2026-W43"
    )
    assert message.get_content_type() == "multipart/alternative"
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    text = plain.get_content()
    assert text.startswith("**CONFIDENTIAL**")
    assert "- **9 attempts** to reach blocked sites (14 requests)" in text
    page = html.get_content()
    assert page.startswith("<!doctype html>") and "<svg" in page and "CONFIDENTIAL" in page


@pytest.mark.parametrize("log", ["sqlite"], indirect=True)
def test_addresses_on_the_command_line_win(
    mailed: tuple[Inbox, str], capsys: pytest.CaptureFixture[str]
) -> None:
    handler, config = mailed
    args = ["report", "--config", config, "--term", "Autumn 2026", "--output", "-"]
    assert main([*args, "--format", "md", "--email", "chair@governors.example"]) == 0
    capsys.readouterr()
    assert handler.envelopes[0].rcpt_tos == ["chair@governors.example"]
    body = handler.message().get_body(("plain",))
    assert body is not None and "alice" not in body.get_content()  # the statement names no one


@pytest.mark.parametrize("log", ["sqlite"], indirect=True)
def test_a_missing_password_variable_is_named(
    log: Log, w43: W43, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    config = _config(log, 1)
    status = main(["report", "--config", config, "--format", "json", "--email"])
    assert status == 2
    assert capsys.readouterr().err == (
        "schoolgate: report.smtp.password_env names TEST_SMTP_PASSWORD, which is not set\n"
    )
