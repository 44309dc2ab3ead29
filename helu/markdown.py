"""The report layer's Markdown primitives, shared by every section (report, studies, proofs).

Kept apart from ``helu/report.py`` so that a section module (``helu/intflow.py``,
``helu/collapse.py``) imports it without importing the report that imports the sections.
"""

__all__ = ["table"]


def table(header, rows) -> str:
    """A Markdown table: ``header`` (column names) and ``rows`` (sequences of cells, each shown
    with ``str``; ``None`` as an empty cell)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join("" if c is None else str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
