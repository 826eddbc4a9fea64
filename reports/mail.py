"""Sending the report: one email, the md as its plain-text part and the html as the
alternative a mail client shows, over SMTP as `report.smtp` in the config says.

The password is never in the config file: `password_env` names the environment variable
that holds it, so the policy file can be shared and committed.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Sequence
from email.message import EmailMessage

from addons.config import SmtpConfig


class MailError(Exception):
    """The report could not be sent; the message says what to fix."""


def report_message(
    *, sender: str, recipients: Sequence[str], subject: str, text: str, html: str
) -> EmailMessage:
    """A multipart/alternative message: text first, html preferred by clients that can."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Subject"] = subject
    # Confidential content: ask clients and relays not to archive or auto-forward it.
    message["Sensitivity"] = "Company-Confidential"
    message.set_content(text)
    message.add_alternative(html, subtype="html")
    return message


def send(smtp: SmtpConfig, message: EmailMessage, timeout: float = 30.0) -> None:
    """Deliver over SMTP (STARTTLS and login when configured); MailError on any failure."""
    password = None
    if smtp.password_env:
        password = os.environ.get(smtp.password_env)
        if password is None:
            raise MailError(f"report.smtp.password_env names {smtp.password_env}, which is not set")
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as e:
        raise MailError(f"cannot send the report via {smtp.host}:{smtp.port}: {e}") from e
