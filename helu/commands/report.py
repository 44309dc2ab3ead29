"""`helu report`: re-render report.md and summary.json from a flow folder's step results."""

HELP = "re-render report.md and summary.json from the results in a flow folder"


def add_arguments(parser):
    parser.add_argument(
        "--out", default="build/report", help="flow folder to report on (default: %(default)s)"
    )


def run(args) -> int:
    from helu.report import write_report

    report, summary = write_report(args.out)
    print(f"report: {report}\nsummary: {summary}")
    return 0
