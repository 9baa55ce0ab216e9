"""One module per notification provider; ``PROVIDERS`` maps a channel's ``type`` to it."""

from __future__ import annotations

from core.alerting.base import Provider
from core.alerting.providers.apprise_channel import AppriseProvider
from core.alerting.providers.discord import DiscordProvider
from core.alerting.providers.jira import JiraProvider
from core.alerting.providers.slack import SlackProvider
from core.alerting.providers.smtp import EmailProvider
from core.alerting.providers.twitter import TwitterProvider
from core.alerting.providers.webhook import WebhookProvider

__all__ = ["PROVIDERS"]

PROVIDERS: dict[str, Provider] = {p.type: p for p in (
    SlackProvider(), DiscordProvider(), JiraProvider(), TwitterProvider(), WebhookProvider(), EmailProvider(),
    AppriseProvider())}
