"""`helu flow` end to end on a small setting: every step runs for real and the report is filled.

The flow runs once (a module fixture); each step's checks are their own test, and a step whose
tool is missing is skipped by name rather than passing without checking anything.
"""

import json
import shutil

import pytest
from conftest import need

from helu.cli import main
from helu.steps import number

UNITS = "forward,forward-train,backward-mask"


@pytest.fixture(scope="module")
def flow(tmp_path_factory):
    out = tmp_path_factory.mktemp("flow") / "report"
    argv = ["-q", "flow", "--out", str(out), "--seeds", "1", "--units", UNITS]
    argv += ["--targets", "generic", "--synth-widths", "8", "--synth-lanes", "1,4"]
    argv += ["--prove-widths", "8", "--prove-lanes", "1"]
    argv += ["--mlp", "sim", "--onchip", "off"]  # the RTL training: minutes of Verilator build
    argv += ["--cnn", "off"]  # the CNN on the RTL: tests/test_sim_net.py, test_netflow.py
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    return out, summary, (out / "report.md").read_text()


@pytest.mark.slow
def test_flow_study_and_golden(flow):
    out, summary, _report = flow
    study = summary["study"]
    assert study["dataset"] == "digits"
    assert {r["act"] for r in study["results"]} >= {"relu", "helu", "gelu"}
    for r in study["results"]:
        assert 0.5 < r["acc_mean"] <= 1 and r["seeds"] == 1 and r["dead_frac"] is not None
    golden = summary["golden"]
    assert golden["vectors"] > 0 and golden["format"]["width"] == 8
    assert {w for w, _, _ in golden["formats"]} == {8, 16}
    assert set(summary) >= {"study", "golden", "environment"}
    assert (out / "study" / "accuracy.png").stat().st_size > 0


@pytest.mark.slow
def test_flow_verilog(flow):
    out, _summary, _report = flow
    names = sorted(p.name for p in (out / "verilog").glob("*.v"))
    # at the most synthesis lanes; the training unit with the port and in the 8-bit format that
    # keeps alpha's band (Q8.5, T=-2)
    assert names == [
        "helu_backward_mask_l4_g8.v",
        "helu_forward_train_w8_l4_f5_tm2.v",
        "helu_forward_train_w8_l4_tport.v",
        "helu_forward_w8_l4.v",
    ]


@pytest.mark.slow
def test_flow_ships_what_it_verified(flow):
    """Every file under verilog/ is, byte for byte, what cocotb simulated and Yosys synthesized."""
    need("iverilog")
    need("yosys")
    from helu.common.outdir import sha256_file

    out, summary, report = flow
    simulated = {f["verilog_sha256"] for f in summary["sim"]["files"]}
    synthesized = {r["verilog_sha256"] for r in summary["synth"]}
    for path in (out / "verilog").glob("*.v"):
        digest = sha256_file(path)
        assert digest in simulated, f"{path.name} was not the file simulated"
        assert digest in synthesized, f"{path.name} was not the file synthesized"
        assert f"`{digest[:12]}`" in report
    kinds = {
        f["threshold"] for f in summary["sim"]["files"] if f["top"].startswith("helu_forward_t")
    }
    assert kinds == {"constant", "port"}


@pytest.mark.slow
def test_flow_simulation(flow):
    need("iverilog")
    out, summary, report = flow
    from helu.golden.vectors import load_golden

    sim = summary["sim"]
    assert sim["simulator"] == "icarus" and sim["mismatches"] == 0
    # --synth-widths 8: the 8-bit sets, every element through each of the three units (and the
    # training unit twice: constant T on the sets of its T, the port on all)
    _meta, sets = load_golden(out / "golden")
    w8 = sum(s.z.size for s in sets if s.z_fmt.width == 8)
    assert sim["checked"] >= 3 * w8
    assert "**PASS**" in report


@pytest.mark.slow
def test_flow_synthesis(flow):
    need("yosys")
    _out, summary, _report = flow
    units = {(r["unit"], r["lanes"]) for r in summary["synth"]}
    assert units == {(u, n) for u in UNITS.split(",") for n in (1, 4)}
    assert all(r["gates"] is not None and r["ff"] > 0 for r in summary["synth"])
    # the unit with a threshold is synthesized with a constant T and with the port, side by side
    kinds = {r["threshold"] for r in summary["synth"] if r["unit"] == "forward-train"}
    assert kinds == {"constant", "port"}


@pytest.mark.slow
def test_flow_formal(flow):
    _out, summary, report = flow
    if "prove" in summary.get("skipped", {}):
        pytest.skip(f"the flow skipped the proofs: {summary['skipped']['prove']}")
    formal = summary["formal"]
    assert formal["proofs"] == 4 and formal["proved"] == 4  # forward-train: T and port
    assert f"## {number('prove')}. Formal" in report and "| forward-train | w8-l1-tport |" in report


@pytest.mark.slow
def test_flow_mlp(flow):
    need("iverilog")
    _out, summary, report = flow
    mlp = summary["mlp"]  # the integer MLP engine: every test sample bit-exact
    assert mlp["sizes"] == [64, 32, 32, 10] and mlp["sim"][0]["checked"] == 360
    assert mlp["sim"][0]["mismatches"] == 0
    assert mlp["sim"][0]["accuracy"] == pytest.approx(mlp["accuracy"]["integer"])
    assert f"## {number('mlp')}. Integer MLP engine on chip" in report and "bit-exact" in report


@pytest.mark.slow
def test_flow_onchip_off(flow):
    out, summary, report = flow
    assert summary["skipped"]["onchip"] == "helu flow --onchip off"
    assert "onchip" not in summary and not (out / "onchip").exists()
    assert (
        f"## {number('onchip')}. Training on chip" in report and "helu flow --onchip off" in report
    )


@pytest.mark.slow
def test_flow_report_names_missing_tools(flow):
    _out, summary, report = flow
    skipped = summary.get("skipped", {})
    for tool, step in (("iverilog", "sim"), ("yosys", "synth")):
        assert (step in skipped) == (not shutil.which(tool)), (tool, skipped)
    # a step that could not run is named in the report, never filled in
    assert ("_Not run: " in report) == bool(skipped), skipped
    for why in skipped.values():
        assert why.split(";")[0][:40] in report


def _context(tmp_path, **options):
    """A flow's context for one step alone."""
    from helu.steps import Context, Options

    return Context(tmp_path, Options(**({"sim": "icarus", "fmax_seeds": 1, "jobs": 1} | options)))


def test_flow_sim_names_a_missing_simulator(tmp_path, monkeypatch):
    """The missing-tool branch the end-to-end test cannot reach on a machine with every tool:
    without Icarus the sim step is skipped with the reason, and simulates nothing."""
    from helu.sim import runner
    from helu.steps import run_step, sim

    monkeypatch.setattr(runner, "tool_missing", lambda sim: f"{sim} hidden by the test")
    monkeypatch.setattr(runner, "run_generated", lambda *a, **k: pytest.fail("simulated"))
    ctx = _context(tmp_path)
    run_step(ctx, sim.STEP)
    assert ctx.skipped == {"sim": "icarus hidden by the test"}


def test_flow_synth_names_a_missing_yosys(tmp_path, monkeypatch):
    """Without Yosys every target is skipped and the synth step says which tool is missing."""
    from helu.hw.tools import TOOLS
    from helu.steps import run_step, synth

    monkeypatch.setitem(TOOLS, "yosys", (("helu-no-such-yosys",), "Debian package 'yosys'"))
    ctx = _context(tmp_path, units=("forward",), synth_lanes=(1,), synth_widths=(8,),
                   targets=("generic",))  # fmt: skip
    ctx.shared["frac_by_width"] = {8: 4}
    run_step(ctx, synth.STEP)
    assert list(ctx.skipped) == ["synth"]
    assert ctx.skipped["synth"].startswith("generic: yosys is not installed"), ctx.skipped
    assert "Debian package 'yosys'" in ctx.skipped["synth"]


def test_check_shipped_wrong(tmp_path):
    """A verilog/ file that is not what a target synthesized stops the flow."""
    from helu.common.outdir import sha256_file
    from helu.hw.units import UnitParams
    from helu.hw.verilog import generate
    from helu.steps.synth import check_shipped

    params = UnitParams(width=8, lanes=2)
    made = generate("forward", params, tmp_path)
    ctx = _context(tmp_path)
    ctx.shared["generated"] = [("forward", params, made)]
    good = {"target": "generic", "verilog_sha256": sha256_file(made.verilog)}
    check_shipped(ctx, [good])  # the same bytes: accepted
    with pytest.raises(RuntimeError, match=r"helu_forward_w8_l2.v \(sha256 [0-9a-f]{12}\) is not"):
        check_shipped(ctx, [{**good, "verilog_sha256": "0" * 64}])


def _stub_steps(monkeypatch, run):
    """The flow's registry with one fast step whose run is ``run(ctx)``."""
    from helu import steps
    from helu.steps.base import Step

    class Stub(Step):
        name = "stub"

        def run(self, ctx):
            run(ctx)

    monkeypatch.setattr(steps, "STEPS", (Stub(),))
    real = steps.run_flow
    monkeypatch.setattr(steps, "run_flow", lambda *a, **k: real(*a, **k, steps=steps.STEPS))


def test_flow_refuses_a_folder_another_flow_holds(tmp_path, monkeypatch, capsys):
    """Two 'helu flow --out DIR' at once: the second is refused before it touches a file (it
    used to empty the folder under the first)."""
    import subprocess
    import sys

    out = tmp_path / "report"
    _stub_steps(monkeypatch, lambda ctx: (ctx.out / "first.txt").write_text("running"))
    assert main(["-q", "flow", "--out", str(out)]) == 0
    (out / "study").mkdir()
    (out / "study" / "metrics.json").write_text("{}")  # the first flow's work in progress
    # the first flow, still running: another process holds the folder's lock
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom helu.sim.runner import lock\n"
         f"with lock({str(out)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["-q", "flow", "--out", str(out)]) == 1
        err = capsys.readouterr().err
        assert f"{out} is in use by another helu command (pid {holder.pid})" in err, err
        assert (out / "study" / "metrics.json").read_text() == "{}"  # nothing touched
    finally:
        holder.kill()
        holder.wait()
    assert main(["-q", "flow", "--out", str(out)]) == 0  # released: the folder is ours again
    assert not (out / "study").exists()


def test_interrupted_flow_report_says_so(tmp_path, monkeypatch):
    """Ctrl-C in a step: the flow still writes its report, which says it was interrupted."""

    def interrupt(ctx):
        raise KeyboardInterrupt

    out = tmp_path / "report"
    _stub_steps(monkeypatch, interrupt)
    assert main(["-q", "flow", "--out", str(out)]) == 130
    status = json.loads((out / "flow.json").read_text())
    assert status["state"] == "interrupted" and status["step"] == "stub", status
    text = (out / "report.md").read_text()
    assert "**This flow was interrupted during step `stub`: KeyboardInterrupt.**" in text
    assert json.loads((out / "summary.json").read_text())["flow"]["state"] == "interrupted"


@pytest.mark.filterwarnings("ignore::helu.golden.fixed.AlphaVanishesWarning")
def test_run_generated_wrong(tmp_path):
    """A constant-T file is checked only against golden sets of its T; none: a clear error."""
    from golden_sets import random_set

    from helu.golden import fixed
    from helu.golden.vectors import write_golden
    from helu.hw.units import UnitParams
    from helu.hw.verilog import generate
    from helu.sim import runner

    if runner.tool_missing("icarus"):
        pytest.skip("icarus is not installed")
    z8 = fixed.Format(8, 5)
    golden = tmp_path / "golden"
    write_golden(golden, [random_set("fc1", z8, z8, 0.05, 40, 1)], {"model": "t", "alpha": 0.05})
    params = UnitParams(width=8, lanes=2, frac=3)  # T = -1, the set has T = -2
    made = generate("forward-train", params, tmp_path / "v")
    with pytest.raises(ValueError, match="no golden set fits helu_forward_train_w8_l2_f3_tm1.v"):
        runner.run_generated(golden, [("forward-train", params, made)], out=tmp_path / "sim")


@pytest.mark.slow
def test_flow_collapse(flow):
    _out, summary, report = flow
    collapse = summary["collapse"]["cells"][0]  # the quick collapse study, paired with ReLU
    assert collapse["key"] == "w2-d5-symmetric-adam-abs" and "relu" in collapse["arms"]
    assert f"## {number('collapse')}. Collapse of deep, narrow nets" in report


@pytest.mark.slow
def test_flow_integer_network(flow):
    out, summary, report = flow
    intnet = summary["intnet"]  # the quick batch-1 integer study, ReLU against two thresholds
    mlp = [r for r in intnet["results"] if r["mode"] == "scratch"]
    cnn = [r for r in intnet["results"] if r["mode"] == "cnn"]
    assert [r["threshold"] for r in mlp] == [0, -2, -8]
    assert all(r["seeds"] == 1 and 0.5 < r["acc_mean"] <= 1 for r in mlp)
    # The CNN rows: ReLU against T = -2, at least 5 seeds, dead channels of both convolutions.
    assert [r["threshold"] for r in cnn] == [0, -2]
    assert all(r["seeds"] == 5 and len(r["dead_layers"]) == 2 for r in cnn)
    assert "CNN int T=-2" in report
    assert "helu flow --cnn off" in report
    assert intnet["golden_net"]["trajectory_steps"] > 0
    assert f"## {number('intnet')}. Integer network" in report and "T=-8 vs ReLU" in report
    assert (out / "golden-net" / "trajectory" / "trajectory.npz").is_file()


@pytest.mark.slow
def test_run_generated_checks_the_sets_of_its_format(tmp_path):
    """i-GELU's hardware depends on frac: a file is checked only against sets of its format."""
    from golden_sets import random_set

    from helu.golden import fixed
    from helu.golden.vectors import write_golden
    from helu.hw.units import UnitParams
    from helu.hw.verilog import generate
    from helu.sim import runner

    if runner.tool_missing("icarus"):
        pytest.skip("icarus is not installed")
    z5, z3 = fixed.Format(8, 5), fixed.Format(8, 3)
    sets = [random_set("f5", z5, z5, 0.05, 40, 1), random_set("f3", z3, z3, 0.05, 40, 2)]
    write_golden(tmp_path / "golden", sets, {"model": "t", "alpha": 0.05})
    params = UnitParams(width=8, lanes=2, frac=5)
    made = generate("igelu", params, tmp_path / "v")
    summary = runner.run_generated(
        tmp_path / "golden", [("igelu", params, made)], out=tmp_path / "sim"
    )
    assert [r["golden_sets"] for r in summary["runs"]] == [["f5"]]
    assert summary["mismatches"] == 0 and summary["checked"] > 40
