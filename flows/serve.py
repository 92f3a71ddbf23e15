"""`litmeta serve`: Prefect deployments with cron schedules for refresh and every saved search.

`serve()` keeps running and starts each scheduled run in this process (Prefect's temporary local
server, or the server PREFECT_API_URL points at). With a Prefect server and work pools, the same
deployments can be run by workers elsewhere (`prefect deploy`); litmeta needs no scheduler of its own.
"""

from __future__ import annotations

from prefect import serve
from prefect.deployments.runner import RunnerDeployment

from litmeta.flows.ingest import search_ingest
from litmeta.flows.network import refresh_seeds
from litmeta.warehouse.searches import saved_searches


def deployments(db: str, eutils_url: str, cron: str, email: str | None, tool: str,
                notify: bool = False) -> list[RunnerDeployment]:
    """The refresh deployment plus one per saved search, all on ``cron``. With ``notify``, refreshes post
    their digests to the webhook in LITMETA_NOTIFY_URL (of the process that runs them)."""
    out = [refresh_seeds.to_deployment(
        name="litmeta-refresh", cron=cron, description="re-observe every tracked seed's citation network",
        parameters={"db": db, "eutils_url": eutils_url, "email": email, "tool": tool, "notify": notify},
        tags=["litmeta"],
    )]
    for n, (query, p) in enumerate(saved_searches(db), 1):
        out.append(search_ingest.to_deployment(
            name=f"litmeta-search-{n}", cron=cron, description=f"saved search: {query}", tags=["litmeta"],
            parameters={"query": query, "db": db, "eutils_url": eutils_url, "mindate": p.get("mindate"),
                        "maxdate": p.get("maxdate"), "max_records": p.get("max_records"), "email": email,
                        "tool": tool},
        ))
    return out


def run_serve(db: str, eutils_url: str, cron: str, email: str | None, tool: str, register_only: bool,
              notify: bool = False) -> list[str]:
    deps = deployments(db, eutils_url, cron, email, tool, notify)
    if register_only:
        return [str(d.apply()) for d in deps]
    serve(*deps)
    return []
