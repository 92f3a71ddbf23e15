"""What elink said about each article of a network, and the observation tables built from it.

`Links.from_relations` takes `EntrezClient.elink_relations` answers; `observation_tables` turns
one observation of a seed's network into Arrow tables (citation_edges, similar_articles,
network_members, link_snapshots) for the warehouse to merge.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa

from litmeta.schemas import TABLES, RowSink

OBSERVATION_TABLES = ("citation_edges", "similar_articles", "network_members", "link_snapshots")


@dataclass
class Links:
    """What elink said about one article."""

    refs: list[int] = field(default_factory=list)
    cited_by: list[int] = field(default_factory=list)
    similar: list[tuple[int, int | None]] = field(default_factory=list)  # (pmid, score), listed order

    @classmethod
    def from_relations(cls, pmids: Iterable[int],
                       relations: Mapping[str, Mapping[int, list[tuple[int, int | None]]]]) -> dict[int, Links]:
        """Per PMID, from ``{relation: {pmid: [(pmid, score)]}}`` (`EntrezClient.elink_relations`)."""
        def ids(relation: str, pmid: int) -> list[int]:
            return [i for i, _ in relations.get(relation, {}).get(pmid, [])]

        return {p: cls(refs=ids("refs", p), cited_by=ids("cited_by", p),
                       similar=list(relations.get("similar", {}).get(p, []))) for p in pmids}

    def union(self, refs: Iterable[int], cited_by: Iterable[int]) -> Links:
        """These links with another source's references and citing articles added (listed order, no repeats)."""
        return Links(refs=list(dict.fromkeys([*self.refs, *refs])),
                     cited_by=list(dict.fromkeys([*self.cited_by, *cited_by])), similar=list(self.similar))

    def top_similar(self, k: int) -> list[int]:
        ranked = sorted(
            enumerate(self.similar),
            key=lambda e: (-(e[1][1] if e[1][1] is not None else float("-inf")), e[0]),
        )
        return [pmid for _, (pmid, _) in ranked[:k]]

    def neighbours(self, relation: str, similar_top: int) -> list[int]:
        if relation == "refs":
            return self.refs
        if relation == "cited_by":
            return self.cited_by
        return self.top_similar(similar_top)


def observation_tables(seed: int, members: Mapping[int, tuple[int, str]], links: Mapping[int, Links],
                       relations: Iterable[str], former: Iterable[int]) -> dict[str, pa.Table]:
    """The Arrow tables of one observation of ``seed``'s network.

    ``members``: pmid -> (hop, via). ``former`` members (no longer reached) are observed (their
    links and link counts), not re-joined. Link counts are NULL for relations not asked for.
    """
    relations = set(relations)
    sink = RowSink(OBSERVATION_TABLES)
    rows = sink.rows
    member, edge = TABLES["network_members"].row, TABLES["citation_edges"].row
    similar, snapshot = TABLES["similar_articles"].row, TABLES["link_snapshots"].row
    for pmid in sorted(set(members) | set(former)):
        if pmid in members:
            hop, via = members[pmid]
            rows["network_members"].append(member(seed_pmid=seed, pmid=pmid, hop=hop, via=via))
        ln = links.get(pmid)
        if ln is None:
            continue
        for r in dict.fromkeys(ln.refs):
            rows["citation_edges"].append(edge(citing_pmid=pmid, cited_pmid=r, origin="elink_refs"))
        for c in dict.fromkeys(ln.cited_by):
            rows["citation_edges"].append(edge(citing_pmid=c, cited_pmid=pmid, origin="elink_citedin"))
        scores = dict(ln.similar)
        for rank, s in enumerate(ln.top_similar(len(ln.similar)), 1):
            rows["similar_articles"].append(similar(pmid=pmid, similar_pmid=s, score=scores.get(s), rank=rank))
        rows["link_snapshots"].append(snapshot(
            pmid=pmid, run_id="", seed_pmid=seed, observed_at=None,
            cited_by_count=len(ln.cited_by) if "cited_by" in relations else None,
            references_count=len(ln.refs) if "refs" in relations else None,
            similar_count=len(ln.similar) if "similar" in relations else None,
        ))
    return sink.to_arrow()
