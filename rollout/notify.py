"""Notifications: a Slack-compatible webhook (`{"text": ...}`) on promotion, block and rollback.

Off unless a URL is configured: the `BLUEGREEN_WEBHOOK_URL` environment variable (or the CLI's
`--webhook-url`). A URL is a secret, so it never lives in a stack file. Sending never raises: a
webhook that is down, slow or refusing is reported to the operator and the command carries on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import requests

__all__ = ["ENV_VAR", "EVENTS", "Delivery", "webhook_url", "format_message", "send"]

ENV_VAR = "BLUEGREEN_WEBHOOK_URL"
EVENTS = ("promotion", "block", "rollback", "break-glass")
_ICONS = {"promotion": ":arrow_up:", "block": ":no_entry:", "rollback": ":rewind:", "break-glass": ":rotating_light:"}


@dataclass(frozen=True)
class Delivery:
    """What happened to one notification."""

    sent: bool
    reason: str  # "" when sent; why not otherwise ("off" when no URL is configured)


def webhook_url(explicit: str | None = None) -> str | None:
    """The configured webhook URL, or None (notifications off)."""
    url = explicit if explicit is not None else os.environ.get(ENV_VAR)
    return url.strip() or None if url else None


def format_message(event: str, stack: str, text: str, *, link: str | None = None) -> str:
    """One line for the channel: icon, event, stack, what happened, and where to read more."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}; known: {', '.join(EVENTS)}")
    out = f"{_ICONS[event]} bluegreen {event} on *{stack}*: {text}"
    return f"{out} <{link}|details>" if link else out


def _short(text: Any, limit: int = 120) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"


def send(url: str | None, text: str, *, session: requests.Session | None = None, timeout: float = 5.0) -> Delivery:
    """POST `{"text": text}` to the webhook. Never raises."""
    if not url:
        return Delivery(False, "off")
    try:
        resp = (session or requests).post(url, json={"text": text}, timeout=timeout)
    except requests.Timeout:
        return Delivery(False, f"webhook did not answer within {timeout:g} s")
    except requests.ConnectionError as exc:
        return Delivery(False, f"webhook unreachable: {_short(exc)}")
    except Exception as exc:  # an invalid URL, a TLS problem: reported, never raised
        return Delivery(False, f"webhook failed ({type(exc).__name__}): {_short(exc)}")
    if not 200 <= resp.status_code < 300:
        return Delivery(False, f"webhook answered HTTP {resp.status_code}: {_short(resp.text)}")
    return Delivery(True, "")
