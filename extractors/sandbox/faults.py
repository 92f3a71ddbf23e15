"""Fault injection for the sandbox: parse ``--faults SPEC`` and draw a fault per request.

SPEC is a comma list of ``kind=rate`` items plus an optional ``seed=N``, e.g.
``429=0.1,500=0.05,502=0.05,truncate=0.05,error200=0.05,reset=0.02,slow=0.05,seed=7``.
Kinds:

- ``429``       HTTP 429 with NCBI's JSON rate-limit body
- ``500``/``502``/``503`` an HTML error page with that status
- ``truncate``  HTTP 200 with the body cut at a random point (Content-Length matches the cut)
- ``error200``  HTTP 200 with an ``<ERROR>`` result document of the endpoint
- ``reset``     the connection is reset without an answer
- ``slow``      the normal answer after a 1-3 s delay
- ``md5``       FTP tree only (:mod:`.ftp`): a wrong checksum in a ``.md5`` answer, a flipped byte in a file
  (``reset`` and ``truncate`` cut an FTP file download part-way, see :mod:`.ftp`)

Draws are reproducible: the n-th admitted request of a server uses ``random.Random`` seeded
from ``(seed, n)``, so the same request sequence sees the same faults, whatever the timing.
Rates are probabilities per request; their sum must not exceed 1.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

#: fault kinds in the (fixed) order their probability intervals are laid out
FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "503", "truncate", "error200", "reset", "slow", "md5")


@dataclass(frozen=True)
class Fault:
    """One drawn fault: its kind and the parameters the server needs to inject it."""

    kind: str
    #: for ``truncate``: keep this fraction of the body (0 < cut < 1)
    cut: float = 0.5
    #: for ``slow``: seconds to wait before answering
    delay: float = 0.0


@dataclass(frozen=True)
class FaultSpec:
    """Parsed ``--faults`` specification (see the module docstring)."""

    rates: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    slow_range: tuple[float, float] = (1.0, 3.0)

    @classmethod
    def parse(cls, spec: str | None) -> FaultSpec:
        """Parse SPEC; raise ``ValueError`` naming the bad item."""
        rates: dict[str, float] = {}
        seed = 0
        if spec is None or not spec.strip():
            return cls(rates={}, seed=0)
        for raw in spec.split(","):
            item = raw.strip()
            if not item:
                continue
            key, sep, value = item.partition("=")
            key, value = key.strip().lower(), value.strip()
            if not sep or not value:
                raise ValueError(f"bad --faults item {item!r}: expected kind=rate or seed=N")
            if key == "seed":
                try:
                    seed = int(value)
                except ValueError:
                    raise ValueError(f"bad --faults item {item!r}: seed must be an integer") from None
                continue
            if key not in FAULT_KINDS:
                raise ValueError(
                    f"bad --faults item {item!r}: unknown fault kind {key!r} (known: {', '.join(FAULT_KINDS)}, seed)"
                )
            try:
                rate = float(value)
            except ValueError:
                raise ValueError(f"bad --faults item {item!r}: rate must be a number in [0, 1]") from None
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"bad --faults item {item!r}: rate must be in [0, 1]")
            if key in rates:
                raise ValueError(f"bad --faults item {item!r}: {key} given twice")
            rates[key] = rate
        total = sum(rates.values())
        if total > 1.0 + 1e-9:
            raise ValueError(f"bad --faults spec {spec!r}: rates add up to {total:g} > 1")
        return cls(rates=rates, seed=seed)

    @property
    def active(self) -> bool:
        """True when any fault has a non-zero rate."""
        return any(r > 0 for r in self.rates.values())

    def draw(self, n: int) -> Fault | None:
        """The fault (or ``None``) for the ``n``-th admitted request; pure function of (seed, n)."""
        if not self.active:
            return None
        rng = random.Random(f"litmeta-sandbox:{self.seed}:{n}")
        u = rng.random()
        cut = rng.uniform(0.05, 0.95)
        delay = rng.uniform(*self.slow_range)
        acc = 0.0
        for kind in FAULT_KINDS:
            acc += self.rates.get(kind, 0.0)
            if u < acc:
                return Fault(kind=kind, cut=cut, delay=delay)
        return None

    def __str__(self) -> str:
        items = [f"{k}={self.rates[k]:g}" for k in FAULT_KINDS if k in self.rates]
        return ",".join([*items, f"seed={self.seed}"])


def parse_faults(spec: str | FaultSpec | None) -> FaultSpec:
    """Accept a SPEC string, an existing :class:`FaultSpec` or ``None`` (no faults)."""
    if isinstance(spec, FaultSpec):
        return spec
    return FaultSpec.parse(spec)
