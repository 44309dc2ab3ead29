"""The command-line options that choose an executor: ``--jobs N`` and ``--scheduler ADDRESS``.

The executors and their protocol live below the command line, in ``helu.common.executor`` (the
proofs, the synthesis sweeps and the studies take one as an argument); this module only words
the options the same for every sweep and turns them into an executor.
"""

from helu.common.executor import default_jobs, make_executor

__all__ = ["add_arguments", "from_args"]


def add_arguments(parser, *, jobs_help: str = "jobs run at once") -> None:
    """``--jobs N`` and ``--scheduler ADDRESS``, worded the same for every sweep."""
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        metavar="N",
        help=f"{jobs_help}, in worker processes (default: the {default_jobs()} available cores)",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="tcp://HOST:PORT",
        help="run the jobs on this Dask distributed scheduler's workers instead "
        "(needs pip install 'helu[cluster]')",
    )


def from_args(args):
    """The executor the ``--jobs``/``--scheduler`` options ask for."""
    return make_executor(args.jobs, args.scheduler)
