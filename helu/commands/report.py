"""`helu report`: re-render report.md and summary.json from a flow folder's step results.

Exits 1 (after writing the report) when a step's verdict is FAIL or incomplete: a report that
checked less than its inputs hold is not a pass.
"""

import sys

HELP = "re-render report.md and summary.json from the results in a flow folder"


def add_arguments(parser):
    parser.add_argument(
        "--out", default="build/report", help="flow folder to report on (default: %(default)s)"
    )


def run(args) -> int:
    import json

    from helu.report import write_report
    from helu.steps.base import FAIL, INCOMPLETE

    report, summary = write_report(args.out)
    print(f"report: {report}\nsummary: {summary}")
    verdicts = json.loads(summary.read_text()).get("verdicts", {})
    bad = {k: v for k, v in verdicts.items() if v["status"] in (FAIL, INCOMPLETE)}
    for name, v in bad.items():
        print(f"helu report: {name}: {v['status']}: {v['why']}", file=sys.stderr)
    return 1 if bad else 0
