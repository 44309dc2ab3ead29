"""Step ``collapse``: the quick collapse study (deep narrow MLPs, ReLU vs HeLU; the ``quick``
preset of ``helu.collapse``) in this process, into ``<out>/collapse/``; the report renders its
``collapse.json`` with ``helu.collapse.render_markdown``."""

import logging

from helu.steps.base import DONE, Context, Step, Verdict, need

__all__ = ["STEP", "CollapseStep", "REPORT_FILE"]

log = logging.getLogger(__name__)

REPORT_FILE = "collapse/collapse.json"


class CollapseStep(Step):
    name = "collapse"
    title = "Collapse of deep, narrow nets (ReLU vs HeLU)"
    record = REPORT_FILE

    def doing(self, ctx):
        return "collapse study, quick preset (deep narrow MLPs, ReLU vs HeLU)"

    def run(self, ctx: Context) -> None:
        from helu.collapse import preset_cells, run_study

        analysis = run_study(preset_cells("quick"), ctx.out / "collapse")
        cell = analysis["cells"][0]
        arms = cell["arms"]
        parts = [f"{cell['key']}: born dead {cell['born_dead']['k']}/{cell['born_dead']['n']}"]
        parts += [
            f"{analysis['labels'][a]} good fits {arms[a]['good']['k']}, recovered "
            f"{arms[a]['recovered']['k']}"
            for a in arms
        ]
        log.info("      %s", "; ".join(parts))

    def check(self, data, path):
        super().check(data, path)
        need(path, isinstance(data.get("cells"), list) and data["cells"], "no 'cells' list")

    def summary(self, data):
        """Per cell, per arm, the rates."""
        return {
            "cells": [
                {
                    "key": c["key"],
                    "born_dead": c["born_dead"]["p"],
                    "arms": {
                        arm: {
                            "collapsed": e["collapsed"]["p"],
                            "good": e["good"]["p"],
                            "recovered": e["recovered"]["k"],
                            "median_nmse": e["median_nmse"]["median"],
                            "good_vs_relu_p": (e.get("vs_relu_good") or {}).get("p"),
                        }
                        for arm, e in c["arms"].items()
                    },
                }
                for c in data["cells"]
            ]
        }

    def section(self, data, found, out_dir):
        from helu.collapse import render_markdown

        return [render_markdown(data, image_prefix="collapse/"), ""]

    def verdict(self, data, found, out_dir):
        seeds = sum(c["seeds"] for c in data["cells"])
        return Verdict(DONE, f"{len(data['cells'])} cells, {seeds} paired initializations")

    def seconds(self, data, timing):
        return timing.get(self.name, data.get("wall_seconds"))


STEP = CollapseStep()
