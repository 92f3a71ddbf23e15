"""Posting a digest to a webhook (Slack incoming webhooks, or any endpoint that takes a JSON POST).

A webhook URL is a secret (whoever holds it can post to the channel): it reaches litmeta through
the environment (`NOTIFY_URL_ENV`, set by ``--notify``), never a flow parameter, and errors name
only its host. Transient failures (connection errors, 429, 5xx) are retried a few times with a
growing pause; a 4xx other than 429 is refused at once.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import requests

from litmeta.errors import CouldNotFinish, UsageError

NOTIFY_URL_ENV = "LITMETA_NOTIFY_URL"
TRIES = 3
TIMEOUT_S = 10.0


class WebhookRefused(UsageError):
    """The webhook answered with a 4xx: the URL or the payload is wrong; retrying cannot fix it."""


class WebhookUnreachable(CouldNotFinish):
    """The webhook could not be reached or kept failing; the digest was not recorded as sent."""


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--notify: not an http(s) URL (host {parts.netloc or '?'}); give the webhook's full URL")
    return url


def post_json(url: str, body: bytes, *, tries: int = TRIES, pause: float = 1.0) -> int:
    """POST ``body`` (JSON) to ``url``; returns the HTTP status of the accepted answer."""
    host = urlsplit(url).netloc
    last = ""
    for attempt in range(1, tries + 1):
        try:
            resp = requests.post(url, data=body, timeout=TIMEOUT_S,
                                 headers={"Content-Type": "application/json", "User-Agent": "litmeta"})
        except requests.RequestException as exc:
            last = type(exc).__name__
        else:
            if resp.status_code < 300:
                return resp.status_code
            if 400 <= resp.status_code < 500 and resp.status_code != 429:
                raise WebhookRefused(f"webhook at {host} refused the digest (HTTP {resp.status_code}); "
                                     "check the --notify URL")
            last = f"HTTP {resp.status_code}"
        if attempt < tries:
            time.sleep(pause * attempt)
    raise WebhookUnreachable(f"webhook at {host}: {last} on each of {tries} tries; the digest was not sent "
                             "and will be sent by the next run")
