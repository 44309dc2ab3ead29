"""helu/common/executor.py: the same results here, in a process pool and on a local Dask cluster."""

import math
import warnings

import pytest

from helu.common.executor import (
    DaskExecutor,
    PoolExecutor,
    SerialExecutor,
    make_executor,
    run_all,
)
from helu.golden.collapse import Cell, run_cell, run_cells

ITEMS = [5, 0, 12, 3, 7]


def _collect(executor, fn=math.factorial, items=ITEMS):
    pairs = list(executor.map(fn, items))
    assert sorted(i for i, _ in pairs) == list(range(len(items)))  # each job exactly once
    return [result for _, result in sorted(pairs)]


def test_serial_and_pool_agree():
    want = [math.factorial(n) for n in ITEMS]
    assert _collect(SerialExecutor()) == want
    with PoolExecutor(2) as pool:
        assert _collect(pool) == want


def _warns(x):
    warnings.warn(f"job {x} warns", UserWarning, stacklevel=1)
    return x


def test_pool_workers_show_warnings_as_this_process_does(capfd, monkeypatch):
    """A warning in a spawned worker reaches the user the way this process shows warnings (the
    CLI's one line), not as a raw Python warning with its file, line and source."""
    from helu import cli

    monkeypatch.setattr(warnings, "showwarning", cli._one_line_warning)
    with PoolExecutor(1) as pool:
        assert _collect(pool, _warns, [1]) == [1]
    assert capfd.readouterr().err.strip().splitlines() == ["helu: warning: job 1 warns"]


def test_pool_raises_a_jobs_error():
    with PoolExecutor(2) as pool, pytest.raises(ValueError, match="factorial"):
        _collect(pool, items=[3, -1, 4])


def test_make_executor():
    assert isinstance(make_executor(1), SerialExecutor)
    assert isinstance(make_executor(3), PoolExecutor)
    assert make_executor(3).workers == 3


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True])
def test_make_executor_wrong(jobs):
    with pytest.raises(ValueError, match="--jobs must be a positive integer"):
        make_executor(jobs)


def test_scheduler_address_wrong():
    with pytest.raises(ValueError, match="Dask scheduler address such as tcp://HOST:8786"):
        make_executor(scheduler="localhost:8786")


def _tiny_cells():
    return [
        Cell(2, 3, bias=b, seeds=6, steps=5, arms=("relu", "helu:0.5")) for b in ("zero", "rai")
    ]


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip(
        "dask.distributed", reason="Dask distributed is not installed (pip install 'helu[cluster]')"
    )
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",  # loopback only
        dashboard_address=None,
    )
    yield cluster
    cluster.close()


@pytest.mark.slow
def test_dask_local_cluster(local_cluster):
    # Worker processes on loopback; the same cells give the same numbers as in this process.
    with DaskExecutor(local_cluster.scheduler_address) as dask:
        assert dask.workers == 2
        assert _collect(dask) == [math.factorial(n) for n in ITEMS]
        with pytest.raises(ValueError, match="factorial"):
            _collect(dask, items=[2, -1])
        cells = run_cells(_tiny_cells(), dask)
    for got, cell in zip(cells, _tiny_cells(), strict=True):
        assert got["results"] == run_cell(cell)["results"]


@pytest.mark.slow
def test_dask_unreachable_scheduler():
    pytest.importorskip("dask.distributed", reason="Dask distributed is not installed")
    with pytest.raises(RuntimeError, match="cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        DaskExecutor("tcp://127.0.0.1:9", timeout=2)


def test_run_all_keeps_the_order_and_reports_progress():
    """``run_all`` (the loop of the proofs and sweeps) returns results in the items' order, on any
    executor, and calls ``progress`` once per result."""
    want = [math.factorial(n) for n in ITEMS]
    seen = []
    assert run_all(math.factorial, ITEMS, progress=lambda *a: seen.append(a)) == want
    assert [done for done, total, _ in seen] == [1, 2, 3, 4, 5] and seen[0][1] == len(ITEMS)
    with PoolExecutor(2) as pool:
        assert run_all(math.factorial, ITEMS, executor=pool) == want
    assert run_all(math.factorial, ITEMS, jobs=2) == want
    with pytest.raises(ValueError, match="factorial"):
        run_all(math.factorial, [3, -1], jobs=2)
