"""Email over SMTP (aiosmtplib): ``security`` is ``starttls`` (port 587), ``tls`` (implicit
TLS, port 465) or ``none`` (a relay on a trusted network). Certificates are verified unless
``verifyTls`` is false. The subject names the monitor and the event; the body is the rendered
template; the ``Message-ID`` carries the delivery id, so a resend after a crash can be
recognised as the same message.

A refused login or refused recipients are final; connection problems, timeouts and
temporary (4xx) SMTP replies are retried.
"""

from __future__ import annotations

import email.message
import email.utils
import re
from typing import Annotated, ClassVar

import aiosmtplib
import msgspec

from core.alerting.base import FieldProblem, SendContext, SendResult

__all__ = ["EmailProvider"]

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
_SECURITY = {"starttls": "starttls", "tls": "tls", "ssl": "tls", "none": "none"}


def _recipients(to: str | list[str] | None) -> list[str]:
    return [] if to is None else [to] if isinstance(to, str) else to
Address = Annotated[str, msgspec.Meta(min_length=3, max_length=254)]


class EmailConfig(msgspec.Struct, kw_only=True, rename="camel", forbid_unknown_fields=True):
    host: Annotated[str, msgspec.Meta(min_length=1, max_length=253)]
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 587
    security: str = "starttls"  # starttls | tls (or ssl) | none, any case
    username: Annotated[str, msgspec.Meta(max_length=254)] | None = None
    password: Annotated[str, msgspec.Meta(max_length=1024)] | None = None
    from_: Address = msgspec.field(name="from")
    to: Annotated[list[Address], msgspec.Meta(min_length=1, max_length=50)] | Address  # one address or a list
    verify_tls: bool = True


class EmailProvider:
    type: ClassVar[str] = "email"
    Config: ClassVar[type[msgspec.Struct]] = EmailConfig
    secret_fields: ClassVar[frozenset[str]] = frozenset({"password"})
    #: Config fields naming the host a message goes to (the target policy applies to them).
    target_fields: ClassVar[frozenset[str]] = frozenset({"host"})
    min_interval: ClassVar[float] = 0.0
    default_template: ClassVar[str] = (
        "{% if is_test %}This is a test message from xuptime: alerts will be sent to this address.\n"
        "{% elif event == 'up' %}{{ monitor.name }} is back up after {{ duration }}.\n"
        "{% elif event == 'flapping' %}{{ monitor.name }} is flapping: {{ changes }} changes between up and down. "
        "Alerts are held until it settles.\n"
        "{% elif event == 'settled' %}{{ monitor.name }} settled after {{ changes }} changes; it is {{ status }}.\n"
        "{% elif event == 'reminder' %}{{ monitor.name }} is still down ({{ duration }}).\n"
        "{% else %}{{ monitor.name }} is down.\n{% endif %}"
        "{% if not is_test %}\nSince: {{ started }}{% if reason %}\nReason: {{ reason }}{% endif %}"
        "{% if monitor.target %}\nTarget: {{ monitor.target }}{% endif %}{% if link %}\nDetails: {{ link }}{% endif %}"
        "{% endif %}")

    @staticmethod
    def check(config: EmailConfig) -> list[FieldProblem]:
        errors = []
        if config.security is not None and config.security.lower() not in _SECURITY:
            errors.append(FieldProblem("config.security", "must be starttls, tls (or ssl) or none"))
        if config.from_ is not None and not _ADDRESS.match(config.from_):
            errors.append(FieldProblem("config.from", "must be an email address"))
        errors += [FieldProblem("config.to", f"{a!r} is not an email address") for a in _recipients(config.to)
                   if not _ADDRESS.match(a)]
        if (config.username is None) != (config.password is None):
            errors.append(FieldProblem("config.password", "give both username and password, or neither"))
        return errors

    @staticmethod
    def message(ctx: SendContext) -> email.message.EmailMessage:
        config: EmailConfig = ctx.config
        e = ctx.event
        what = {"up": "is back up", "reminder": "is still down", "test": "test message", "flapping": "is flapping",
                 "settled": "settled"}.get(e["event"], "is down")
        msg = email.message.EmailMessage()
        msg["Subject"] = f"[xuptime] {e['monitor']['name']} {what}"
        msg["From"] = config.from_
        msg["To"] = ", ".join(_recipients(config.to))
        msg["Date"] = email.utils.formatdate(usegmt=True)
        msg["Message-ID"] = f"<xuptime-{ctx.delivery_id}@{config.from_.rsplit('@', 1)[1]}>"
        msg.set_content(ctx.text + "\n")
        return msg

    @staticmethod
    def payload(ctx: SendContext) -> dict[str, str]:
        msg = EmailProvider.message(ctx)
        return {"subject": str(msg["Subject"]), "to": str(msg["To"]), "body": ctx.text}

    async def send(self, ctx: SendContext) -> SendResult:
        config: EmailConfig = ctx.config
        security = _SECURITY[config.security.lower()]
        try:
            await aiosmtplib.send(self.message(ctx), hostname=config.host, port=config.port,
                                  username=config.username, password=config.password, timeout=10,
                                  use_tls=security == "tls", start_tls=security == "starttls",
                                  validate_certs=config.verify_tls)
        except aiosmtplib.SMTPAuthenticationError as exc:
            return SendResult(False, exc.code, f"login refused: {exc.message}", retry=False)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return SendResult(False, None, f"recipients refused: {exc}", retry=False)
        except aiosmtplib.SMTPResponseException as exc:
            return SendResult(False, exc.code, exc.message, retry=exc.code < 500)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            return SendResult(False, None, f"{type(exc).__name__}: {exc}", retry=True)
        return SendResult(True, 250, f"accepted for {len(_recipients(config.to))} recipient(s)")
