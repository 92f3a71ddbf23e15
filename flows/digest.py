"""The digest of every refresh: a markdown artifact per seed, and a webhook post when something is new.

The webhook URL comes from the environment (`litmeta.extractors.webhook.NOTIFY_URL_ENV`), never from
a flow parameter, so it reaches no Prefect run record. A digest is posted once per observation and
webhook: the warehouse records each post (``notifications``) and a repeated run skips it.
"""

from __future__ import annotations

import os

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from litmeta.errors import UsageError
from litmeta.extractors.webhook import NOTIFY_URL_ENV, post_json
from litmeta.warehouse.digest import Digest, already_sent, digest_of, last_notified, record_sent


def notify_digest(db: str, digest: Digest, url: str | None, run_id: str | None) -> str:
    """Post ``digest`` to ``url`` unless it holds nothing new or was posted there before; says which."""
    if not url:
        raise UsageError(f"--notify: no webhook URL given (nor {NOTIFY_URL_ENV})")
    if not digest.has_news:
        return "not sent: nothing new"
    if already_sent(db, digest, url):
        return "not sent: sent before"
    status = post_json(url, digest.body())
    record_sent(db, digest, url, status, run_id)
    return "sent"


@task(name="digest", cache_policy=NO_CACHE)
def publish_digest(db: str, seed: int, run_id: str, notify: bool = False) -> dict:
    """The seed's digest since its previous observation, as an artifact (and a webhook post if asked)."""
    digest = digest_of(db, seed, "last", read_only=False)
    create_markdown_artifact(markdown=digest.markdown(), key=f"litmeta-digest-{seed}",
                             description=f"litmeta digest of seed {seed}")
    notified = "not asked"
    if notify:
        url = os.environ.get(NOTIFY_URL_ENV)
        # since what this webhook was last told: news of a run whose post failed is not lost
        told = last_notified(db, seed, url) if url else None
        notified = notify_digest(db, digest_of(db, seed, told, read_only=False) if told else digest, url, run_id)
    return {"news": digest.has_news, "notified": notified}
