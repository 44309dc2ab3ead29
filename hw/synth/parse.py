"""Parsers of what Yosys and nextpnr write; each raises ``ValueError`` on text it cannot trust.

Callers (``hw.synth.run``) turn that ``ValueError`` into a ``ToolError`` naming the design and
the file.
"""

import json
import re

from helu.hw.synth.targets import TARGETS

__all__ = [
    "parse_yosys_stat",
    "parse_nextpnr_log",
    "parse_nextpnr_report",
    "parse_critical_path",
    "count_cells",
]


def _json_table(text: str, what: str, key: str) -> dict:
    """The table ``key`` of the JSON object in ``text``; ``ValueError`` naming ``what`` if none."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON ({exc})") from None
    table = data.get(key) if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ValueError(f"{what} has no {key!r} table")
    return table


def parse_yosys_stat(text: str, top: str) -> dict[str, int]:
    """Cell counts by type of module ``top`` from the text Yosys ``stat -json`` wrote.

    Raises ``ValueError`` when the text is not JSON (a truncated file), lacks the module, or has
    no ``num_cells_by_type`` table whose entries add up to ``num_cells``.
    """
    modules = _json_table(text, "Yosys stat output", "modules")
    module = modules.get("\\" + top, modules.get(top))
    if module is None:
        raise ValueError(
            f"Yosys stat output has no module {top!r} (found: {', '.join(sorted(modules))})"
        )
    by_type = module.get("num_cells_by_type")
    total = module.get("num_cells")
    if not isinstance(by_type, dict) or not isinstance(total, int):
        raise ValueError(f"Yosys stat output for {top!r} lacks num_cells/num_cells_by_type")
    cells = {str(k): int(v) for k, v in by_type.items()}
    if sum(cells.values()) != total:
        raise ValueError(
            f"Yosys stat output for {top!r} is inconsistent: cells by type add up to "
            f"{sum(cells.values())}, num_cells says {total}"
        )
    return cells


_FMAX_RE = re.compile(r"Max frequency for clock\s+'([^']+)':\s+([0-9]+(?:\.[0-9]+)?)\s+MHz")


def parse_nextpnr_log(text: str) -> dict[str, float]:
    """Post-route Fmax per clock (MHz) from a nextpnr log.

    nextpnr prints "Max frequency for clock ..." after placement and again after routing; only
    the lines after the last "Routing complete" count. Raises ``ValueError`` when routing did not
    complete, the log was cut before "Program finished normally", or no post-route Fmax line
    exists (nextpnr then found no register-to-register path).
    """
    marker = text.rfind("Routing complete")
    if marker < 0:
        raise ValueError("nextpnr log has no 'Routing complete' line: routing did not finish")
    if "Program finished normally" not in text[marker:]:
        raise ValueError("nextpnr log ends before 'Program finished normally' (cut off?)")
    fmax = {clock: float(mhz) for clock, mhz in _FMAX_RE.findall(text[marker:])}
    if not fmax:
        raise ValueError("nextpnr log has no post-route 'Max frequency for clock' line")
    return fmax


_PATH_HEAD_RE = re.compile(r"Critical path report for clock '[^']+' \(posedge -> posedge\):")
# A step of the path: newer nextpnr (ECP5) names its kind ("clk-to-q", "routing", "logic",
# "setup"), older nextpnr-ice40 leaves it out; then the delay, the running total, and what.
_PATH_STEP_RE = re.compile(
    r"Info:\s+(?:([a-z-]+)\s+)?([0-9.]+)\s+([0-9.]+)\s+(Source|Net|Setup)\s+(\S+)"
)
_PATH_SUM_RE = re.compile(r"Info: ([0-9.]+) ns logic, ([0-9.]+) ns routing")


def _signal_name(net: str) -> str | None:
    """The design's own name of a netlist net (``unit.layer3[0]`` -> ``layer3[0]``), or ``None``
    for a name the tools made up (``$abc$...``, ``unit.$408``)."""
    name = net.split("\\")[-1] if "\\" in net else net
    name = name.removeprefix("unit.")
    return None if name.startswith("$") or "$" in name.split("[")[0] else name


def _levels(steps) -> int:
    """Logic cells on a path: its "logic" steps, or (a log without kinds) its sources after the
    first (the launching register)."""
    if any(kind for kind, *_ in steps):
        return sum(1 for kind, *_ in steps if kind == "logic")
    return max(sum(1 for _, _, _, what, _ in steps if what == "Source") - 1, 0)


def parse_critical_path(text: str, verilog: str | None = None) -> dict | None:
    """The post-route register-to-register critical path of a nextpnr log: ``ns`` (total),
    ``logic_ns``, ``routing_ns``, ``levels`` (logic cells on it), ``start`` and ``end`` (the
    source and sink cells), ``signals`` (the design's own signal names the path runs through, in
    order). With ``verilog`` (the text of the Verilog file nextpnr's "Defined in" lines cite),
    ``statements``: the assignments the path runs through, in order, as written there (what
    names the path in the generated Verilog, so in the Amaranth source). ``None`` when the log
    has no such report (no register-to-register path)."""
    marker = text.rfind("Routing complete")
    heads = list(_PATH_HEAD_RE.finditer(text, max(marker, 0)))
    if not heads:
        return None
    block = text[heads[-1].end() :]
    block = block[: block.find("\n\n")] if "\n\n" in block else block
    steps = _PATH_STEP_RE.findall(block)
    total = _PATH_SUM_RE.search(block)
    if not steps or not total:
        return None
    sources = [name for kind, _, _, what, name in steps if what == "Source"]
    signals = []
    for _, _, _, what, name in steps:
        sig = _signal_name(name) if what == "Net" else None
        if sig and sig not in signals:
            signals.append(sig)
    sinks = re.findall(r"Sink\s+(\S+)", block)
    statements = []
    if verilog is not None:
        lines = verilog.splitlines()
        for number in re.findall(r"\.v:(\d+)\.\d+-", block):
            line = lines[int(number) - 1].strip() if int(number) <= len(lines) else ""
            if line.startswith("assign") and line not in statements:
                statements.append(line)
    return {
        "ns": float(steps[-1][2]),
        "logic_ns": float(total.group(1)),
        "routing_ns": float(total.group(2)),
        "levels": _levels(steps),
        "start": sources[0] if sources else None,
        "end": sinks[-1] if sinks else None,
        "signals": signals,
        "statements": statements,
    }


def parse_nextpnr_report(text: str) -> dict[str, float]:
    """Achieved Fmax per clock (MHz) from the JSON nextpnr writes with ``--report``.

    Raises ``ValueError`` when the text is not JSON or its ``fmax`` table is missing or empty.
    """
    table = _json_table(text, "nextpnr report", "fmax")
    try:
        fmax = {str(clock): float(entry["achieved"]) for clock, entry in table.items()}
    except (KeyError, TypeError, ValueError):
        raise ValueError("nextpnr report's 'fmax' table lacks 'achieved' values") from None
    if not fmax:
        raise ValueError("nextpnr report has an empty 'fmax' table: no clocked paths")
    return fmax


def count_cells(cells: dict[str, int], target: str) -> dict[str, int]:
    """Sum ``cells`` (by type) into the target's classes; ``ValueError`` on an unknown type."""
    classes = TARGETS[target]["classes"]
    counts = {name: 0 for name in classes}
    unknown = []
    for cell, n in cells.items():
        for name, prefixes in classes.items():
            if cell.startswith(prefixes):
                counts[name] += n
                break
        else:
            unknown.append(cell)
    if unknown:
        raise ValueError(
            f"netlist holds cell types the {target} table does not know (unmapped logic?): "
            f"{', '.join(sorted(unknown))}"
        )
    return counts
