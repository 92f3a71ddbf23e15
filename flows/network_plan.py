"""Which articles belong to a seed's network: breadth-first over observed links, capped deterministically.

Pure logic, no I/O: the flow feeds it the links it fetched and asks what to expand next.

- hop 1: the seed's references, citing articles and top-K similar articles (by score, else as listed);
- hop h+1: the same for every hop-h member;
- a member keeps the closest hop at which it was reached and the relation that reached it first
  (relations in the order refs, cited_by, similar; sources in PMID order);
- ``max_nodes`` caps the set: closest hop first, then most links into the set, then lowest PMID.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from litmeta.extractors.links import Links

RELATION_ORDER = ("refs", "cited_by", "similar")


@dataclass
class Member:
    pmid: int
    hop: int
    via: str


class NetworkPlan:
    """Accumulates members hop by hop."""

    def __init__(self, seed: int, relations: list[str], similar_top: int, max_nodes: int | None) -> None:
        self.seed = seed
        self.relations = [r for r in RELATION_ORDER if r in relations]
        self.similar_top = similar_top
        self.max_nodes = max_nodes
        self.members: dict[int, Member] = {seed: Member(seed, 0, "seed")}

    def frontier(self, hop: int) -> list[int]:
        return sorted(p for p, m in self.members.items() if m.hop == hop)

    def expand(self, hop: int, links: dict[int, Links]) -> list[int]:
        """Add hop+1 members reached from the hop members; returns the new members (PMID order)."""
        found: dict[int, str] = {}
        into: Counter[int] = Counter()
        for src in self.frontier(hop):
            ln = links.get(src)
            if ln is None:
                continue
            for rel in self.relations:
                for pmid in ln.neighbours(rel, self.similar_top):
                    if pmid in self.members or pmid == src:
                        continue
                    into[pmid] += 1
                    found.setdefault(pmid, rel)
        chosen = sorted(found, key=lambda p: (-into[p], p))
        if self.max_nodes is not None:
            room = max(0, self.max_nodes - len(self.members))
            chosen = chosen[:room]
        for pmid in chosen:
            self.members[pmid] = Member(pmid, hop + 1, found[pmid])
        return sorted(chosen)

    def counts(self) -> dict[str, int]:
        """Members per 'hop N via R' (the seed as 'hop 0 seed')."""
        c = Counter(f"hop {m.hop} {m.via}" for m in self.members.values())
        return dict(sorted(c.items()))
