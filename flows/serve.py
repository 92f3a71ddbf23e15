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


def mirror_deployment(db: str, cron: str, email: str | None, tool: str, ftp_url: str, downloads: str, shards: str,
                      workers: int | None = None, dask_address: str | None = None) -> RunnerDeployment:
    """`litmeta mirror --updates` on ``cron``: each run loads the update files not loaded yet, in order."""
    from litmeta.flows.mirror import mirror, task_runner

    return mirror.with_options(task_runner=task_runner(workers, dask_address)).to_deployment(
        name="litmeta-mirror-updates", cron=cron, tags=["litmeta"],
        description="PubMed's daily update files not loaded yet, in order (litmeta mirror --updates)",
        parameters={"db": db, "ftp_url": ftp_url, "baseline": False, "updates": True, "downloads": downloads,
                    "shards": shards, "email": email, "tool": tool})


def run_serve(db: str, eutils_url: str, cron: str, email: str | None, tool: str, register_only: bool,
              mirror: dict | None = None, notify: bool = False) -> list[str]:
    """Serve the deployments; ``mirror``: the keyword arguments of `mirror_deployment` but db/email/tool,
    to schedule the nightly mirror of update files too."""
    deps = deployments(db, eutils_url, cron, email, tool, notify)
    if mirror is not None:
        deps.append(mirror_deployment(db, email=email, tool=tool, **mirror))
    if register_only:
        return [str(d.apply()) for d in deps]
    serve(*deps)
    return []
