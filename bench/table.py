"""Plain-text tables: metric | ours | raw wall (which) | ratio, and the targets."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    metric: str
    ours: str
    wall: str
    ratio: str


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    measured: str
    goal: str
    ok: bool


HEADER = Row("metric", "ours", "raw wall (which)", "ratio")


def fmt_rate(per_s: float) -> str:
    if per_s <= 0:
        return "-"
    if per_s >= 10_000:
        return f"{per_s / 1000:,.1f}k/s"
    return f"{per_s:,.0f}/s"


def fmt_ratio(ours: float, wall: float) -> str:
    if ours <= 0 or wall <= 0:
        return "-"
    return f"{100 * ours / wall:.0f}%"


def render(rows: list[Row | str], header: Row = HEADER) -> str:
    """Rows as an aligned table under `header`; a bare string is a section line."""
    table = [r for r in rows if isinstance(r, Row)]
    cols = list(zip(*[(r.metric, r.ours, r.wall, r.ratio) for r in [header, *table]], strict=True))
    widths = [max(len(c) for c in col) for col in cols]

    def line(r: Row) -> str:
        cells = (r.metric, r.ours, r.wall, r.ratio)
        return " | ".join(
            c.ljust(w) if i in (0, 2) else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    out = [line(header), rule]
    for r in rows:
        out.append(line(r) if isinstance(r, Row) else f"{r}")
    return "\n".join(out)


def render_targets(targets: list[Target]) -> str:
    w = max(len(t.name) for t in targets)
    return "\n".join(
        f"{'PASS' if t.ok else 'MISS'}  {t.name.ljust(w)}  {t.measured}  (target {t.goal})"
        for t in targets
    )
