"""cocotb benches on Icarus Verilog and Verilator: golden sets through the generated Verilog.

Golden folders here are small and synthetic (``golden.fixed`` on random codes, written with
``vectors.write_golden``), so these tests stand alone. Builds are shared by the whole module
(one folder per unit and parameter set); Verilator builds (~12 s or more each) are kept to two.
"""

import json
import shutil

import pytest
from conftest import need
from golden_sets import random_set

from helu.golden import fixed
from helu.golden.vectors import load_golden, write_golden
from helu.hw.units import UNITS, UnitParams
from helu.sim import runner
from helu.sim import stimulus as st

LANES = 3  # odd, so every set ends in a padded transfer
STALL = 0.5  # valid and ready each low about half the time


META = {"model": "synthetic", "checkpoint": None, "dataset": "random", "act": "helu",
        "alpha": 0.05, "accuracy": None, "split": "test"}  # fmt: skip


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """Two 8-bit sets with different formats and thresholds, one 16-bit set."""
    sets = [
        random_set("fc1_w8", fixed.Format(8, 5), fixed.Format(8, 6), 0.05, 200, 1),
        random_set("fc2_w8", fixed.Format(8, 3), fixed.Format(8, 7), 0.5, 101, 2),
        random_set("fc1_w16", fixed.Format(16, 10), fixed.Format(16, 12), 0.05, 100, 3),
    ]
    assert len({s.threshold for s in sets[:2]}) == 2
    path = tmp_path_factory.mktemp("golden") / "synthetic"
    write_golden(path, sets, META)
    return path


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("sim")


def _w8_elements(golden):
    return sum(s.elements for s in load_golden(golden)[1] if s.z_fmt.width == 8)


def _assert_clean(summary):
    for r in summary["runs"]:
        assert r["mismatches"] == 0, f"{r['unit']} on {r['simulator']}: {r['first_mismatch']}"
    assert summary["mismatches"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("unit", list(UNITS))
def test_golden_icarus(unit, golden, out):
    need("icarus")
    summary = runner.run_golden(golden, units=[unit], lanes=LANES, width=8, out=out)
    _assert_clean(summary)
    # every golden element plus the corner cases went through the RTL
    assert summary["checked"] > _w8_elements(golden)
    sets = {name for r in summary["runs"] for name in r["golden_sets"]}
    assert sets == {"fc1_w8", "fc2_w8"}
    assert json.loads((out / "summary.json").read_text())["checked"] == summary["checked"]


@pytest.mark.slow
@pytest.mark.parametrize("unit", ["forward-train", "backward-z"])
def test_constant_threshold_icarus(unit, golden, out):
    """One build per format with T as a constant: a build per 8-bit set here."""
    need("icarus")
    summary = runner.run_golden(
        golden, units=[unit], lanes=LANES, width=8, out=out, threshold_port=False
    )
    _assert_clean(summary)
    assert [r["threshold"] for r in summary["runs"]] == ["constant", "constant"]
    assert sorted(len(r["golden_sets"]) for r in summary["runs"]) == [1, 1]


@pytest.mark.slow
def test_verilator_stall_storm_and_reset(golden, out):
    """forward-train and backward-z on Verilator under a stall storm, then a mid-stream reset."""
    need("verilator")
    summary = runner.run_golden(
        golden,
        units=["forward-train", "backward-z"],
        simulators=["verilator"],
        lanes=LANES,
        width=8,
        out=out,
        stall=STALL,
    )
    _assert_clean(summary)
    assert summary["checked"] > 2 * _w8_elements(golden)
    build = runner.build_files(
        out / "rtl" / f"{summary['runs'][0]['top']}.v",
        out / "rtl" / f"{summary['runs'][0]['top']}.json",
        "verilator",
        out,
    )
    _check_reset(build, golden)


def _forward_stim(build, golden):
    sets = [s for s in load_golden(golden)[1] if s.z_fmt.width == 8]
    unit = build.sidecar["unit"]
    return st.assemble(st.golden_segments(unit, sets, build.sidecar), build.sidecar)


def _check_reset(build, golden):
    r = runner.run_stimulus(build, _forward_stim(build, golden), test="reset_mid_stream")
    assert r["dropped_by_reset"] > 0, "the reset test never had a transfer in flight"
    assert r["stale_outputs"] == 0
    assert r["mismatches"] == 0, r["first_mismatch"]


@pytest.mark.slow
def test_stall_storm_icarus(golden, out):
    need("icarus")
    summary = runner.run_golden(
        golden, units=["backward-mask"], lanes=LANES, width=8, out=out, stall=STALL, seed=5
    )
    _assert_clean(summary)
    (run,) = summary["runs"]
    transfers = -(-run["checked"] // LANES)
    # with both sides stalling half the time, a transfer takes well over one cycle on average
    assert run["cycles"] > 1.5 * transfers


@pytest.mark.slow
def test_reset_mid_stream_icarus(golden, out):
    need("icarus")
    build = runner.build_unit("forward-train", _params(golden), "icarus", out)
    _check_reset(build, golden)


def _params(golden):
    s = load_golden(golden)[1][0]
    return st.params_for_set(s, LANES, threshold_port=True)


@pytest.mark.slow
def test_corrupted_golden_fails(golden, out, tmp_path, capsys):
    """One expected value flipped: the run fails and names the set, element and values."""
    need("icarus")
    meta, sets = load_golden(golden)
    bad = sets[0]
    element = 77
    bad.y = bad.y.copy()
    bad.y[element] = bad.y[element] ^ 1
    corrupted = tmp_path / "corrupted"
    write_golden(corrupted, sets, meta)
    # the bench itself must catch it (the golden-set check before simulating is switched off)
    summary = runner.run_golden(
        corrupted, units=["forward"], lanes=LANES, width=8, out=out, check_golden=False
    )
    assert summary["mismatches"] == 1
    first = summary["runs"][0]["first_mismatch"]
    assert (first["set"], first["element"], first["lane"]) == (bad.name, element, element % LANES)
    assert first["inputs"]["z"] == bad.z[element]
    assert first["expected"]["y"] == bad.y[element] != first["got"]["y"]

    from helu.cli import main

    code = main(["sim", "--golden", str(corrupted), "--unit", "forward", "--lanes",
                 str(LANES), "--width", "8", "--out", str(out)])  # fmt: skip
    assert code == 1  # the command names the golden set, not the RTL, as wrong
    assert "golden set fc1_w8 is inconsistent with its own format" in capsys.readouterr().err


# Hand-written faulty units with the generated forward unit's ports: the benches must catch them.
FAULTY = {
    # o__valid has no reset: whatever was in flight survives a reset.
    "no_reset": ("o__valid <= i__valid | (o__valid & ~o__ready);", "~o__valid | o__ready"),
    # always ready: an output held under backpressure is overwritten (data lost).
    "drops": ("if (rst) o__valid <= 0; else o__valid <= i__valid | (o__valid & ~o__ready);", "1"),
}


def _faulty(kind, reference, directory):
    meta = dict(reference.sidecar)
    top = f"faulty_{kind}"
    meta["top"] = top
    lanes, width = LANES, meta["ports"]["in"]["fields"][0]["width"]
    valid, ready = FAULTY[kind]
    text = f"""module {top}(input clk, input rst,
  input [{lanes * width - 1}:0] i__payload, input i__valid, output i__ready,
  output reg [{lanes * width - 1}:0] o__payload, output reg o__valid, input o__ready);
  assign i__ready = {ready};
  initial o__valid = 1'b0;
  integer k;
  always @(posedge clk) begin
    if (i__ready) begin
      {valid}
      for (k = 0; k < {lanes}; k = k + 1)
        o__payload[k*{width} +: {width}] <= i__payload[k*{width}+{width - 1}]
          ? {width}'d0 : i__payload[k*{width} +: {width}];
    end
  end
endmodule
"""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{top}.v").write_text(text)
    (directory / f"{top}.json").write_text(json.dumps(meta))
    return directory / f"{top}.v", directory / f"{top}.json"


@pytest.mark.slow
def test_faulty_units_caught(golden, out, tmp_path):
    """A unit that loses data under backpressure passes at full rate but fails the stall storm;
    one whose valid survives reset fails the mid-stream reset test."""
    need("icarus")
    params = UnitParams(width=8, lanes=LANES)
    reference = runner.build_unit("forward", params, "icarus", out)
    stim = _forward_stim(reference, golden)

    drops = runner.build_files(*_faulty("drops", reference, tmp_path), "icarus", out)
    assert runner.run_stimulus(drops, stim)["mismatches"] == 0
    storm = runner.run_stimulus(drops, stim, idle=STALL, backpressure=STALL, seed=1)
    assert storm["mismatches"] > 0

    no_reset = runner.build_files(*_faulty("no_reset", reference, tmp_path), "icarus", out)
    r = runner.run_stimulus(no_reset, stim, test="reset_mid_stream")
    assert r["dropped_by_reset"] > 0 and r["stale_outputs"] > 0


@pytest.mark.slow
def test_waves_icarus(golden, tmp_path):
    need("icarus")
    params = UnitParams(width=8, lanes=1)
    build = runner.build_unit("forward", params, "icarus", tmp_path, waves=True)
    assert build.directory.name.endswith("-waves")
    r = runner.run_stimulus(build, _forward_stim(build, golden))
    assert r["mismatches"] == 0
    wave = r["waves"]
    assert shutil.os.path.getsize(wave) > 0


def test_sim_cli_wrong(golden, tmp_path, capsys):
    from helu.cli import main

    cases = [
        (["--golden", str(tmp_path / "nope")], "no such golden folder"),
        (["--golden", str(golden), "--sim", "modelsim"], "unknown simulator 'modelsim'"),
        (["--golden", str(golden), "--unit", "forward,nope"], "unknown unit 'nope'"),
        (["--golden", str(golden), "--lanes", "0"], "Lane count must be a positive integer, not 0"),
        (["--golden", str(golden), "--stall", "1"], "Stall probability must be in [0, 1), not 1"),
    ]
    for argv, message in cases:
        assert main(["sim", *argv, "--out", str(tmp_path / "o")]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


def test_sim_cli_width_wrong(golden, tmp_path, capsys):
    """A width no golden set has: checked after the simulator is found, so it needs Icarus."""
    need("icarus")
    from helu.cli import main

    argv = ["sim", "--golden", str(golden), "--width", "12", "--out", str(tmp_path / "o")]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "no golden set has 12-bit z" in err and len(err.splitlines()) == 1, err


def test_runner_wrong(tmp_path):
    with pytest.raises(ValueError, match="unknown simulator 'ghdl'"):
        runner.tool_missing("ghdl")
    build = runner.Build("icarus", "x", tmp_path, tmp_path / "x.v", tmp_path / "x.json", {})
    with pytest.raises(ValueError, match="unknown bench test 'soak'"):
        runner.run_stimulus(build, None, test="soak")
    with pytest.raises(ValueError, match="Idle probability must be in"):
        runner.run_stimulus(build, None, idle=1.5)


@pytest.mark.slow
def test_table_tells_the_variants_of_a_unit_apart(golden, tmp_path):
    """The two 8-bit sets have different formats, and i-GELU's hardware depends on the format:
    two builds, two rows, each labelled with what shapes it (its frac), never two alike."""
    from helu.commands.sim import format_table

    need("icarus")
    summary = runner.run_golden(golden, units=["igelu"], width=8, lanes=LANES, out=tmp_path)
    assert [r["variant"] for r in summary["runs"]] == ["frac 5", "frac 3"]
    table = format_table(summary).splitlines()
    assert table[0].split()[:6] == ["unit", "simulator", "width", "lanes", "T", "variant"]
    rows = [row.split() for row in table[2:-1]]
    assert [row[:7] for row in rows] == [
        ["igelu", "icarus", "8", str(LANES), "none", "frac", "5"],
        ["igelu", "icarus", "8", str(LANES), "none", "frac", "3"],
    ], table


def test_a_unit_that_cannot_take_a_format_is_refused_before_simulating(tmp_path):
    """i-GELU cannot be built in Q16.15 (66-bit intermediates): refused in one line before any
    simulator runs (it failed after the other units' simulations), naming set, unit and way out."""
    need("icarus")
    golden = tmp_path / "golden"
    sets = [
        random_set("fc1_w8", fixed.Format(8, 5), fixed.Format(8, 6), 0.05, 20, 1),
        random_set("fc1_w16", fixed.Format(16, 15), fixed.Format(16, 12), 0.05, 20, 3),
    ]
    write_golden(golden, sets, META)
    with pytest.raises(ValueError) as info:
        runner.run_golden(golden, units=["forward", "igelu"], lanes=LANES, out=tmp_path / "sim")
    assert str(info.value).startswith(
        f"{golden}: golden set fc1_w16 (Q16.15) cannot run on igelu: i-GELU in Q16.15 needs "
    ), info.value
    assert "leave igelu out of --unit, or pick another --width" in str(info.value)
    assert not (tmp_path / "sim").exists()
