"""Step ``golden``: golden vectors of the study's trained HeLU model at W=8, W=16 and W=8 with 5
fractional bits into ``<out>/golden/`` (``golden.export.export_checkpoint``).

Per-tensor scales (no saturation) at 8 and 16 bits; at 8 bits the digits MLP's range leaves 2-3
fractional bits, where alpha=0.05 has no negative code in its band, so a third set fixes 5
fractional bits (T=-2): the band is exercised at 8 bits, at the price of some saturation.
"""

from helu.markdown import table
from helu.steps.base import DONE, Context, Step, Verdict, need

__all__ = ["STEP", "GoldenStep", "GOLDEN_WIDTHS"]

GOLDEN_WIDTHS = (8, 16, "8:5")


def _fmt(x, spec=".3f"):
    return "n/a" if x is None else format(x, spec)


class GoldenStep(Step):
    name = "golden"
    title = "Golden vectors"
    record = "golden/manifest.json"

    def doing(self, ctx):
        return "exporting golden vectors (W=8, W=16, and W=8 with 5 fractional bits)"

    def run(self, ctx: Context) -> None:
        from helu.golden.export import export_checkpoint

        metrics = ctx.shared.get("metrics") or {}
        if not metrics.get("golden_checkpoint"):
            raise RuntimeError("the study trained no HeLU model to export golden vectors from")
        export_checkpoint(
            ctx.out / "study" / metrics["golden_checkpoint"],
            ctx.out / "golden",
            widths=GOLDEN_WIDTHS,
        )

    def check(self, data, path):
        super().check(data, path)
        sets = data.get("sets")
        need(path, isinstance(sets, list) and sets, "no 'sets' list")
        for s in sets:
            need(path, isinstance(s, dict), "a set is not an object")
            for key in ("name", "layer", "elements", "z_format", "threshold"):
                need(path, key in s, f"a set has no {key!r}")

    def stale(self, found, out_dir):
        from helu.common.outdir import sha256_file

        golden, study = found.get("golden"), found.get("study")
        if golden and study and golden.get("checkpoint_sha256") and study.get("golden_checkpoint"):
            checkpoint = out_dir / "study" / study["golden_checkpoint"]
            if checkpoint.is_file() and sha256_file(checkpoint) != golden["checkpoint_sha256"]:
                return (
                    f"{self.record} was exported from another checkpoint than "
                    f"study/{study['golden_checkpoint']} (its hash differs); re-run 'helu golden'"
                )
        return None

    def summary(self, data):
        sets = data["sets"]
        first = sets[0]
        return {
            "model": data.get("model"),
            "act": data.get("act"),
            "alpha": data.get("alpha"),
            "accuracy": data.get("accuracy"),
            "vectors": sum(s["elements"] for s in sets),
            "sets": len(sets),
            "format": {**first["z_format"], "threshold": first["threshold"]},
            "formats": sorted(
                {(s["z_format"]["width"], s["z_format"]["frac"], s["threshold"]) for s in sets}
            ),
        }

    def section(self, data, found, out_dir):
        rows = []
        for s in data["sets"]:
            z = s["z_format"]
            rows.append(
                (
                    s["name"],
                    s["layer"],
                    s["elements"],
                    f"Q{z['width']}.{z['frac']}",
                    s["threshold"],
                    s.get("z_saturations", "n/a"),
                    s.get("mask_mismatch", "n/a"),
                    s.get("alpha_note") or "",
                )
            )
        return [
            f"From `{data.get('checkpoint')}` ({data.get('act')}, alpha={data.get('alpha')}, "
            f"test accuracy {_fmt(data.get('accuracy'), '.4f')}), {data.get('split', 'test')} "
            "split. `mask diff`: elements whose quantized mask differs from the float mask.\n",
            table(["set", "layer", "elements", "z format", "T", "sat.", "mask diff", "note"], rows),
            "",
        ]

    def verdict(self, data, found, out_dir):
        elements = sum(s["elements"] for s in data["sets"])
        return Verdict(DONE, f"{len(data['sets'])} sets, {elements} elements exported")


STEP = GoldenStep()
