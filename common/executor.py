"""One executor protocol for every parallel job: here, in a process pool, or on a Dask cluster.

Proofs (``hw.formal.prove_all``), synthesis sweeps (``hw.synth.sweep``) and studies (``helu study
collapse`` cells) hand their jobs to an executor and never care where they run. Every executor
keeps the same small contract (:class:`Executor`):

``executor.map(fn, items)`` yields ``(index, fn(items[index]))`` pairs **in completion order**
(so a sweep can report progress and save each result as it arrives); ``fn`` must be a
module-level function and ``items`` picklable. An exception in a job is raised by ``map``.
Executors are context managers; ``close()`` releases workers or the cluster connection.

- :class:`SerialExecutor`: in this process, one job after the other (``jobs=1``);
- :class:`PoolExecutor`: ``jobs`` worker processes on this machine, started with ``spawn`` so
  that no thread state of the parent (torch's, for one) is copied into a worker, and with
  SIGTERM raising ``KeyboardInterrupt`` in each, so a job's clean-up runs (``hw.tools.run_tool``
  kills its tool's process group); a worker shows warnings as the parent does (the CLI's one
  line) when the parent replaced ``warnings.showwarning`` with a module-level function;
- :class:`DaskExecutor`: the workers of a running Dask distributed scheduler (needs the
  optional extra ``helu[cluster]``).

:func:`run_all` is the loop every caller wrote: results in the order of the items, a progress
callback as each arrives. The command-line options that choose an executor (``--jobs``,
``--scheduler``) are the CLI's, in ``helu/executor.py``.
"""

import concurrent.futures as cf
import multiprocessing
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

__all__ = [
    "DaskExecutor",
    "Executor",
    "PoolExecutor",
    "SerialExecutor",
    "default_jobs",
    "make_executor",
    "run_all",
    "stop_on_term",
]


class Executor(Protocol):
    """What every executor offers (see the module docstring)."""

    @property
    def workers(self) -> int: ...

    @property
    def where(self) -> str: ...

    def map(self, fn: Callable, items: Iterable) -> Iterator[tuple[int, Any]]: ...

    def close(self) -> None: ...


def default_jobs() -> int:
    """The cores this process may use (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def stop_on_term():
    """In a worker: SIGTERM raises ``KeyboardInterrupt``, so a job unwinds (its ``finally`` and
    ``except BaseException`` clean-ups run, child process groups are killed) before it ends."""
    import signal

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)


def _shown_warnings():
    """How this process shows warnings, for its workers: ``warnings.showwarning`` when a program
    replaced it with a module-level function (a worker imports it by name), else ``None``."""
    import pickle
    import warnings

    show = warnings.showwarning
    if show is getattr(warnings, "_showwarning_orig", None):
        return None
    try:
        pickle.dumps(show)
    except Exception:  # a closure or a bound method: the worker keeps Python's way
        return None
    return show


def _start_worker(showwarning=None):
    """A spawned worker's start: :func:`stop_on_term`, and warnings shown as the parent shows
    them (the CLI's one line instead of a raw warning with its file, line and source)."""
    import warnings

    stop_on_term()
    if showwarning is not None:
        warnings.showwarning = showwarning


def _check_jobs(jobs) -> int:
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"--jobs must be a positive integer, not {jobs!r}")
    return jobs


class _Closing:
    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class SerialExecutor(_Closing):
    """Runs each job in this process, in order."""

    workers = 1
    where = "this process"

    def map(self, fn, items):
        for index, item in enumerate(items):
            yield index, fn(item)


class PoolExecutor(_Closing):
    """Runs jobs in ``jobs`` worker processes on this machine (spawned, not forked)."""

    def __init__(self, jobs: int):
        self._jobs = _check_jobs(jobs)

    @property
    def workers(self) -> int:
        return self._jobs

    @property
    def where(self) -> str:
        return f"{self._jobs} local processes"

    def map(self, fn, items):
        items = list(items)
        if not items:
            return
        pool = cf.ProcessPoolExecutor(
            max_workers=min(self._jobs, len(items)),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
            initargs=(_shown_warnings(),),
        )
        try:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            for future in cf.as_completed(futures):
                yield futures[future], future.result()
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM) or failed: stop the running jobs now instead of
            # waiting for them (a Yosys run takes minutes); each worker's SIGTERM unwinds its job,
            # which kills the tool's process group (hw.tools.run_tool).
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:
            # On an error or an early stop, jobs not yet started are dropped, not run.
            pool.shutdown(wait=True, cancel_futures=True)


_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx)://\S+$")


class DaskExecutor(_Closing):
    """Runs jobs on the workers of a Dask distributed scheduler at ``address``.

    The workers need the same ``helu`` (and torch, for the studies) installed as here.
    """

    def __init__(self, address: str, *, timeout: float = 20):
        if not isinstance(address, str) or not _ADDRESS.match(address):
            raise ValueError(
                f"--scheduler takes a Dask scheduler address such as tcp://HOST:8786, "
                f"not {address!r}"
            )
        try:
            from dask.distributed import Client
        except ImportError:
            raise RuntimeError(
                "--scheduler needs Dask distributed; install it with: pip install 'helu[cluster]'"
            ) from None
        try:
            self._client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise RuntimeError(
                f"cannot reach the Dask scheduler at {address} ({type(exc).__name__}); "
                "is it running and reachable from here?"
            ) from None
        self._address = address

    @property
    def workers(self) -> int:
        info = self._client.scheduler_info()
        return max(1, sum(w.get("nthreads", 1) for w in info.get("workers", {}).values()))

    @property
    def where(self) -> str:
        return f"the Dask scheduler at {self._address}"

    def map(self, fn, items):
        from dask.distributed import as_completed

        items = list(items)
        if not items:
            return
        futures = self._client.map(fn, items, pure=False)
        index = {future.key: i for i, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                yield index[future.key], future.result()
        finally:
            self._client.cancel(futures)

    def close(self):
        self._client.close()


def make_executor(jobs: int | None = None, scheduler: str | None = None):
    """A Dask executor when ``scheduler`` is given, else a pool of ``jobs`` processes (default:
    the available cores), or this process when that is 1."""
    if scheduler:
        return DaskExecutor(scheduler)
    jobs = default_jobs() if jobs is None else _check_jobs(jobs)
    return SerialExecutor() if jobs == 1 else PoolExecutor(jobs)


def run_all(fn, items, *, executor=None, jobs: int = 1, progress=None) -> list:
    """``[fn(item) for item in items]``, run on ``executor`` (or, without one, on
    ``make_executor(jobs)``, which this call closes), in the order of ``items``.

    ``progress(done, total, result)`` is called as each result arrives (completion order). A
    job's exception ends the run and is raised here.
    """
    items = list(items)
    owned = executor is None
    if owned:
        executor = SerialExecutor() if len(items) <= 1 else make_executor(jobs)
    results = [None] * len(items)
    try:
        for done, (index, result) in enumerate(executor.map(fn, items), 1):
            results[index] = result
            if progress:
                progress(done, len(items), result)
    finally:
        if owned:
            executor.close()
    return results
