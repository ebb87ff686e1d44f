"""Markdown tables of scores, as commands print them and model cards and benches write them."""

from __future__ import annotations


def format_table(results: dict[str, dict[str, float]], row_header: str = "system", digits: int = 3) -> str:
    """A markdown table: one row a system (or slice), one column a metric (the first row's metrics); floats with
    `digits` decimals, counts as they are, a missing value as `-`."""
    names = list(next(iter(results.values()))) if results else []
    lines = [f"| {row_header} | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for system, scores in results.items():
        cells = (_cell(scores.get(name), digits) for name in names)
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value, digits: int) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
