"""Notifications: a Slack-compatible webhook (`{"text": ...}`) on promotion, block and rollback.

Off unless a URL is configured: the `BLUEGREEN_WEBHOOK_URL` environment variable (or the CLI's
`--webhook-url`). A URL is a secret, so it never lives in a stack file. Sending never raises: a
webhook that is down, slow or refusing is reported to the operator and the command carries on.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

__all__ = ["ENV_VAR", "EVENTS", "Delivery", "webhook_url", "format_message", "send", "redact"]

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


_URL_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def redact(text: str, url: str) -> str:
    """`text` without the webhook URL or any piece of it long enough to matter (host, path, query):
    a Slack-style webhook URL is a credential, and errors from requests/urllib3 quote it."""
    out = _URL_RE.sub("<webhook URL>", text)
    try:
        parts = urlsplit(url)
        tail = parts.path + ("?" + parts.query if parts.query else "")
        pieces = [url, tail, parts.netloc, parts.hostname or "", parts.path, parts.query, *parts.path.split("/"), *parts.query.split("&")]
    except ValueError:
        pieces = [url]
    for piece in sorted({p for p in pieces if p and len(p) >= 4}, key=len, reverse=True):
        out = out.replace(piece, "<redacted>")
    return out


def send(url: str | None, text: str, *, session: requests.Session | None = None, timeout: float = 5.0) -> Delivery:
    """POST `{"text": text}` to the webhook. Never raises, and never says the URL (it is a secret)."""
    if not url:
        return Delivery(False, "off")
    try:
        resp = (session or requests).post(url, json={"text": text}, timeout=timeout)
    except requests.Timeout:
        return Delivery(False, f"webhook did not answer within {timeout:g} s")
    except requests.ConnectionError as exc:
        cause = getattr(exc.args[0], "reason", exc) if exc.args else exc  # urllib3's MaxRetryError -> its reason
        return Delivery(False, f"webhook unreachable: {_short(redact(str(cause), url))}")
    except Exception as exc:  # an invalid URL, a TLS problem: reported, never raised
        return Delivery(False, f"webhook failed ({type(exc).__name__}): {_short(redact(str(exc), url))}")
    if not 200 <= resp.status_code < 300:
        return Delivery(False, f"webhook answered HTTP {resp.status_code}: {_short(redact(resp.text, url))}")
    return Delivery(True, "")
