"""What changed around a seed between two observations: the weekly question, from the warehouse alone.

An observation is one set of `network_metrics` rows (one per `network`/`refresh` of the seed). The
digest compares the latest observation with a baseline: the one before it (``since='last'``), or the
last one before a date. New facts are those whose ``first_seen`` is after the baseline; rank moves
compare the two observations' metrics. Notifications sent for a digest are recorded in
``notifications`` so the same change is never posted twice to the same webhook.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import asdict, dataclass, field

import duckdb

from litmeta.errors import UsageError
from litmeta.warehouse.graph import LABEL_SQL, NoObservation, latest_observation, observations

RANK_MOVES_SHOWN = 5  # risers and fallers each
LIST_MAX = 50  # items listed per section (counts are always complete)



@dataclass
class Digest:
    seed: int
    title: str | None
    observed_at: dt.datetime
    since: dt.datetime | None  # the baseline observation (None: the first observation, all is new)
    new_members: list[dict] = field(default_factory=list)
    new_citing: list[dict] = field(default_factory=list)
    new_edges: list[dict] = field(default_factory=list)
    new_edges_total: int = 0
    rank_moves: list[dict] = field(default_factory=list)
    no_longer_reached: list[dict] = field(default_factory=list)

    @property
    def has_news(self) -> bool:
        return bool(self.new_members or self.new_citing or self.new_edges_total or self.rank_moves
                    or self.no_longer_reached)

    def headline(self) -> str:
        since = f"since {self.since:%Y-%m-%d %H:%M}" if self.since else "at its first observation"
        if not self.has_news:
            return f"litmeta: nothing new around PMID {self.seed} {since} (observed {self.observed_at:%Y-%m-%d %H:%M})"
        return (f"litmeta: PMID {self.seed} {since}: {len(self.new_citing)} new citing article(s), "
                f"{len(self.new_members)} new member(s), {self.new_edges_total} new citation edge(s), "
                f"{len(self.no_longer_reached)} no longer reached")

    def to_json(self) -> dict:
        d = asdict(self)
        d["observed_at"] = self.observed_at.isoformat()
        d["since"] = self.since.isoformat() if self.since else None
        d["has_news"] = self.has_news
        d["text"] = self.text()  # Slack (and most chat webhooks) show this field
        return d

    def body(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, ensure_ascii=False, default=str).encode()

    def text(self) -> str:
        lines = [self.headline()]
        for head, items, fmt in self.sections():
            if items:
                lines.append(f"{head}:")
                lines += [f"  {fmt(i)}" for i in items]
        return "\n".join(lines)

    def markdown(self) -> str:
        lines = [f"# {self.headline()}", ""]
        if self.title:
            lines += [f"Seed: **{self.title}** ([PubMed](https://pubmed.ncbi.nlm.nih.gov/{self.seed}/))", ""]
        for head, items, fmt in self.sections():
            if items:
                lines += [f"## {head}", ""] + [f"- {fmt(i)}" for i in items] + [""]
        return "\n".join(lines).rstrip() + "\n"

    def sections(self):
        def art(i: dict) -> str:
            who = f"{i.get('first_author') or '?'} {i.get('pub_year') or ''}".strip()
            return f"{i['pmid']} ({who}) {(i.get('title') or '')[:100]}"

        return [
            ("New citing articles of the seed", self.new_citing, art),
            ("New members", self.new_members, lambda i: f"{art(i)} [{i['via']}, hop {i['hop']}]"),
            (f"New citation edges ({self.new_edges_total})", self.new_edges,
             lambda i: f"{i['citing_pmid']} cites {i['cited_pmid']}"),
            ("Largest rank moves", self.rank_moves,
             lambda i: f"{art(i)}: PageRank rank {i['rank_before']} -> {i['rank_now']}, "
                       f"cited by {i['cited_by_before']} -> {i['cited_by_now']}"),
            ("No longer reached", self.no_longer_reached, art),
        ]


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: dict) -> list[dict]:
    cur = con.execute(sql, _used(sql, params))
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


def baseline(con: duckdb.DuckDBPyConnection, seed: int, since: str | dt.datetime | None) -> tuple[dt.datetime, dt.datetime | None]:
    """(latest observation, baseline observation or None) for ``since``: 'last' (or None) is the observation
    before the latest; a date or time, the last observation at or before it."""
    latest_observation(con, seed)  # an unknown or never observed seed: NoObservation, naming what to run
    seen = observations(con, seed)
    if not seen:
        raise NoObservation(f"seed {seed} has no network metrics yet; run 'litmeta refresh --seed {seed}'")
    latest = seen[-1]
    if since in (None, "last"):
        return latest, seen[-2] if len(seen) > 1 else None
    assert isinstance(since, dt.datetime)
    if since > latest:
        raise UsageError(f"--since {since:%Y-%m-%d} is after the last observation of seed {seed} "
                         f"({latest:%Y-%m-%d %H:%M}); give an earlier date, or --since last")
    before = [o for o in seen if o <= since]
    return latest, before[-1] if before else None


def build_digest(con: duckdb.DuckDBPyConnection, seed: int, since: str | dt.datetime | None = "last") -> Digest:
    """The digest of ``seed``'s latest observation against ``since`` (see `baseline`)."""
    at, base = baseline(con, seed, since)
    # Facts first seen after the baseline's run ended are new (a run also writes edges after its
    # observation's timestamp, e.g. resolved references); everything up to now belongs to the latest.
    bound = con.execute(
        "SELECT max(r.finished_at) FROM ingest_runs r WHERE r.run_id IN (SELECT run_id FROM network_metrics "
        "WHERE seed_pmid = ? AND observed_at = ?)", [seed, base]).fetchall()[0][0] if base else None
    p = {"seed": seed, "at": at, "base": base or dt.datetime(1, 1, 1),
         "after": max(bound, base) if bound and base else base or dt.datetime(1, 1, 1)}
    title = con.execute("SELECT title FROM articles WHERE pmid = ?", [seed]).fetchall()
    d = Digest(seed, title[0][0] if title else None, at, base)
    d.new_members = _rows(con, f"""
        WITH l AS ({LABEL_SQL})
        SELECT m.pmid, m.hop, m.via, l.title, l.pub_year, l.first_author FROM network_members m
        LEFT JOIN l USING (pmid)
        WHERE m.seed_pmid = $seed AND m.last_seen = $at AND m.first_seen > $after AND m.pmid <> $seed
        ORDER BY m.hop, m.pmid LIMIT {LIST_MAX}""", p)
    d.new_citing = _rows(con, f"""
        WITH l AS ({LABEL_SQL}),
        c AS (SELECT citing_pmid AS pmid FROM citation_edges WHERE cited_pmid = $seed
              GROUP BY 1 HAVING min(first_seen) > $after)
        SELECT c.pmid, l.title, l.pub_year, l.first_author FROM c LEFT JOIN l USING (pmid)
        ORDER BY c.pmid LIMIT {LIST_MAX}""", p)
    edges = """
        WITH m AS (SELECT pmid FROM network_members WHERE seed_pmid = $seed AND last_seen = $at)
        SELECT citing_pmid, cited_pmid FROM citation_edges
        WHERE citing_pmid IN (SELECT pmid FROM m) AND cited_pmid IN (SELECT pmid FROM m)
        GROUP BY 1, 2 HAVING min(first_seen) > $after"""
    d.new_edges_total = con.execute(f"SELECT count(*) FROM ({edges})", _used(edges, p)).fetchall()[0][0]
    d.new_edges = _rows(con, f"{edges} ORDER BY 1, 2 LIMIT {LIST_MAX}", p)
    if base is not None:
        d.no_longer_reached = _rows(con, f"""
            WITH l AS ({LABEL_SQL})
            SELECT b.pmid, l.title, l.pub_year, l.first_author FROM network_metrics b LEFT JOIN l USING (pmid)
            WHERE b.seed_pmid = $seed AND b.observed_at = $base AND b.pmid NOT IN
                  (SELECT pmid FROM network_metrics WHERE seed_pmid = $seed AND observed_at = $at)
            ORDER BY b.pmid LIMIT {LIST_MAX}""", p)
        moves = _rows(con, f"""
            WITH l AS ({LABEL_SQL})
            SELECT n.pmid, l.title, l.pub_year, l.first_author, b.pagerank_rank AS rank_before,
                   n.pagerank_rank AS rank_now, b.global_cited_by AS cited_by_before, n.global_cited_by AS cited_by_now
            FROM network_metrics n JOIN network_metrics b ON b.pmid = n.pmid AND b.seed_pmid = n.seed_pmid
            LEFT JOIN l ON l.pmid = n.pmid
            WHERE n.seed_pmid = $seed AND n.observed_at = $at AND b.observed_at = $base
              AND (b.pagerank_rank <> n.pagerank_rank
                   OR b.global_cited_by IS DISTINCT FROM n.global_cited_by)
            ORDER BY n.pmid""", p)
        risers = sorted((m for m in moves if _move(m) > 0), key=lambda m: (-_move(m), m["pmid"]))
        fallers = sorted((m for m in moves if _move(m) < 0), key=lambda m: (_move(m), m["pmid"]))
        still = [m for m in moves if _move(m) == 0]
        d.rank_moves = risers[:RANK_MOVES_SHOWN] + fallers[:RANK_MOVES_SHOWN] + still[:RANK_MOVES_SHOWN]
    return d


def _used(sql: str, params: dict) -> dict:
    """The named parameters ``sql`` uses (DuckDB refuses unused ones)."""
    return {k: v for k, v in params.items() if f"${k}" in sql}


def _move(m: dict) -> int:
    """Places gained in the PageRank ranking (then cited-by gained, for equal ranks)."""
    gained = m["rank_before"] - m["rank_now"]
    return gained if gained else (m["cited_by_now"] or 0) - (m["cited_by_before"] or 0)


def digest_of(db: str, seed: int, since: str | dt.datetime | None = "last", read_only: bool = True) -> Digest:
    """`build_digest` on the warehouse file ``db`` (read-only, unless a writing run asks from within)."""
    from litmeta.warehouse.db import check_path, connect

    check_path(db, must_exist=True)
    with connect(db, read_only=read_only, wait=10) as con:
        return build_digest(con, seed, since)


def target_sha256(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()


def already_sent(db: str, digest: Digest, url: str) -> bool:
    """Whether this digest's observation was posted to ``url`` before."""
    from litmeta.warehouse.db import session

    with session(db) as con:
        return bool(con.execute(
            "SELECT count(*) FROM notifications WHERE seed_pmid = ? AND observed_at = ? AND target_sha256 = ?",
            [digest.seed, digest.observed_at, target_sha256(url)]).fetchall()[0][0])


def last_notified(db: str, seed: int, url: str) -> dt.datetime | None:
    """The latest observation of ``seed`` whose digest was posted to ``url``, or None."""
    from litmeta.warehouse.db import session

    with session(db) as con:
        return con.execute("SELECT max(observed_at) FROM notifications WHERE seed_pmid = ? AND target_sha256 = ?",
                           [seed, target_sha256(url)]).fetchall()[0][0]


def record_sent(db: str, digest: Digest, url: str, status: int, run_id: str | None) -> None:
    """Record that ``digest`` was posted to ``url`` (by its hash: the URL is a secret)."""
    from litmeta.warehouse.db import session
    from litmeta.warehouse.load import utcnow

    with session(db) as con:
        con.execute("""
            INSERT INTO notifications (seed_pmid, observed_at, target_sha256, since, digest_sha256, status, sent_at, run_id)
            SELECT $seed, $at, $target, $since, $digest, $status, $sent, $run
            WHERE NOT EXISTS (SELECT 1 FROM notifications
                              WHERE seed_pmid = $seed AND observed_at = $at AND target_sha256 = $target)""",
            {"seed": digest.seed, "at": digest.observed_at, "target": target_sha256(url), "since": digest.since,
             "digest": hashlib.sha256(digest.body()).hexdigest(), "status": status, "sent": utcnow(),
             "run": run_id}).fetchall()
