"""Outgoing email through SMTP (stdlib smtplib), only when SMTP_HOST is configured."""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from tenants.settings import get_settings


@dataclass(frozen=True)
class MailSettings:
    host: str
    port: int
    username: str
    password: str
    sender: str
    security: str  # "starttls", "ssl" or "none"


def mail_settings() -> MailSettings | None:
    """The SMTP settings (SMTP_*); None when no SMTP_HOST is set (then links are only shown
    to the admin)."""
    smtp = get_settings().mail
    if not smtp.host:
        return None
    default_port = {"ssl": 465, "none": 25}.get(smtp.security, 587)
    return MailSettings(
        host=smtp.host,
        port=smtp.port if smtp.port is not None else default_port,
        username=smtp.username,
        password=smtp.password,
        sender=smtp.sender,
        security=smtp.security,
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
