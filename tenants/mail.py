"""Outgoing email through SMTP (stdlib smtplib), only when SMTP_HOST is configured."""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    username: str
    password: str
    sender: str
    security: str  # "starttls", "ssl" or "none"


def mail_settings() -> MailSettings | None:
    """SMTP_HOST, SMTP_PORT, SMTP_USERNAME, SMTP_PASSWORD, SMTP_FROM, SMTP_SECURITY; None
    when no SMTP_HOST is set (then links are only shown to the admin)."""
    host = os.environ.get("SMTP_HOST") or ""
    if not host:
        return None
    security = (os.environ.get("SMTP_SECURITY") or "starttls").lower()
    default_port = {"ssl": 465, "none": 25}.get(security, 587)
    return MailSettings(
        host=host,
        port=int(os.environ.get("SMTP_PORT") or default_port),
        username=os.environ.get("SMTP_USERNAME") or "",
        password=os.environ.get("SMTP_PASSWORD") or "",
        sender=os.environ.get("SMTP_FROM") or "no-reply@localhost",
        security=security,
    )


def send_mail(settings: MailSettings, *, to: str, subject: str, body: str) -> None:
    """Send one plain-text message (blocking: call it from a worker thread)."""
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    smtp: smtplib.SMTP
    if settings.security == "ssl":
        smtp = smtplib.SMTP_SSL(
            settings.host, settings.port, timeout=30, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=30)
    with smtp:
        if settings.security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.username:
            smtp.login(settings.username, settings.password)
        smtp.send_message(message)
