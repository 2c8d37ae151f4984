"""Ray as a benchmark back end: one Ray task per (algo, env, seed), on a local Ray instance or a cluster.

    python -m rl.benchmark --name mdpo_on --algos mdpo ppo --envs Hopper-v4 --seeds 0 1 2 -n 300000 \\
        --backend ray --address auto

:class:`RayBackend` implements :class:`rl.benchmark.Backend`, so the runs, the ``results/`` layout and the resume
rules are the process pool's: the harness gives it only the unfinished runs, and every task calls the same
:func:`rl.benchmark.execute`, which resumes a run from its last checkpoint.

Where files go (the driver is the process that runs ``python -m rl.benchmark``):

- a task on the driver's node works in the driver's folders (relative paths resolve against the driver's
  working directory), as a process-pool worker would;
- a task on another node works in a scratch folder of its own. Each new checkpoint is sent, as a tar archive,
  to a small actor pinned to the driver's node that writes it under the driver's ``logs/benchmarks/``; the
  finished run's ``results/`` files and its run folder (with its newest checkpoint) come back with the task's
  result and the driver writes them. No shared disk is needed;
- absolute paths are taken to be shared storage that every node mounts at the same path (``--storage DIR``
  puts the run folders there): a task writes them directly, and checkpoints need no transfer.

Retries: a task whose worker process dies (killed, out of memory, node lost) is resubmitted by Ray up to
``max_retries`` times. The retry finds the run's newest checkpoint (on the driver's disk, sent back to the
scratch folder, or on shared storage) and :func:`rl.runner.train` resumes from it, so the run is neither lost
nor started over, and the harness receives exactly one outcome per run.

Ray is optional: this module imports without it, and :func:`require_ray` turns a missing install into a
one-line :class:`RayUnavailableError` naming the fix. :mod:`rl.sweep` and :mod:`qd.ray_evaluator` join
clusters through :func:`connect` and :func:`check_cluster_code` too.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import socket
import tarfile
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rl.benchmark import RunSpec

INSTALL_HINT = 'pip install -e ".[ray]"'
"""The fix for a missing Ray, Ray Tune or Optuna install (the ``ray`` extra of setup.cfg)."""
DOCS_PAGE = "docs/scale.md"
CHECKPOINTS = "checkpoints"
"""The runner's checkpoint folder inside a run folder (:data:`rl.runner.CHECKPOINT_DIR`)."""
RECORD_FILE = "run.json"
"""Written last when files are unpacked: a run counts as finished once its record is there."""


class RayBackendError(RuntimeError):
    """A Ray set-up problem the user fixes (install, address, cluster): printed as one line, exit status 2."""


class RayUnavailableError(RayBackendError):
    """Ray (or Ray Tune, or Optuna) is not installed."""


class ClusterError(RayBackendError):
    """The cluster cannot be reached, or cannot run the project's code as the driver has it."""


def require_ray() -> ModuleType:
    """Import and return :mod:`ray`, or raise :class:`RayUnavailableError` naming the install command."""
    try:
        import ray
    except ImportError as error:
        raise RayUnavailableError(f"Ray is not installed ({error}): install it with {INSTALL_HINT}.") from None
    return ray


def _split_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); a bare host takes Ray's default GCS port 6379."""
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "6379")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise ClusterError(f"--address {address!r} is not HOST:PORT (e.g. 10.0.0.1:6379) or auto.") from None


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Refuse, within ``timeout`` seconds, an address where nothing listens (``ray.init`` would wait far longer).

    Raises:
        ClusterError: for a Ray Client (``ray://``) address, a malformed one, or one that refuses or does not answer.
    """
    if address.startswith("ray://"):
        raise ClusterError(
            f"--address {address!r} is a Ray Client address, which runs the driver off the cluster: run the "
            "command on a cluster node with --address auto (or HEAD:6379) instead."
        )
    host, port = _split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as error:
        raise ClusterError(
            f"Cannot reach a Ray cluster at {host}:{port} ({error.strerror or error}): start its head there with "
            f"`ray start --head --port={port}`, or fix --address (see {DOCS_PAGE})."
        ) from None


def connect(address: str | None = None, *, num_cpus: int | None = None) -> bool:
    """Join the Ray cluster at ``address`` (``auto``: the one this machine belongs to), or start a local Ray
    instance with ``num_cpus`` CPUs when neither ``address`` nor ``RAY_ADDRESS`` names one; an instance already
    running in this process is kept.

    Returns:
        True when this call started Ray (the caller then calls ``ray.shutdown()`` when done).

    Raises:
        RayUnavailableError: Ray is not installed.
        ClusterError: the address cannot be reached.
    """
    ray = require_ray()
    address = address or os.environ.get("RAY_ADDRESS")  # Ray's own variable names the cluster too
    if address not in (None, "", "auto", "local"):
        check_reachable(address)
    if ray.is_initialized():
        return False
    try:
        if address in (None, "", "local"):
            ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)
        else:
            ray.init(address=address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as error:
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ClusterError(
            f"Cannot join the Ray cluster at {address or 'a new local instance'} ({first_line}): start one with "
            f"`ray start --head`, then pass --address auto on a node of it or --address HEAD:6379 (see {DOCS_PAGE})."
        ) from None
    return True


def _make_probe() -> Callable[[], dict[str, Any]]:
    """The probe run on every node: what code a worker there would import.

    Built inside a function so that Ray pickles it by value: it must run on a node where ``rl`` cannot be
    imported, to say so.
    """

    def probe() -> dict[str, Any]:
        import importlib.metadata
        import os
        import platform
        import subprocess

        info: dict[str, Any] = {"host": platform.node()}
        try:
            import rl
        except Exception as error:  # noqa: BLE001 - whatever stops the import is the answer
            info["error"] = f"{type(error).__name__}: {error}"
            return info
        try:
            info["version"] = importlib.metadata.version("frontier-rl")
        except importlib.metadata.PackageNotFoundError:
            info["version"] = None
        root = os.path.dirname(os.path.dirname(os.path.abspath(rl.__file__)))
        info["commit"] = None
        if os.path.isdir(os.path.join(root, ".git")):
            try:
                git = ["git", "-C", root]
                commit = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                        check=True, timeout=10).stdout.strip()
                dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                       text=True, check=True, timeout=10).stdout.strip()
                info["commit"] = (commit + ("-dirty" if dirty else "")) or None
            except (OSError, subprocess.SubprocessError):
                pass
        return info

    return probe


def source_commit() -> str | None:
    """The commit (``-dirty`` with local changes) of the checkout ``rl`` is imported from, None outside git."""
    return _make_probe()().get("commit")


def compare_code(driver: dict[str, Any], nodes: Sequence[dict[str, Any]]) -> str | None:
    """The first node whose project install differs from the driver's, as a one-line message; None if all match.

    Each entry is a probe's answer: ``host`` and either ``error`` (``rl`` did not import) or ``version`` (of the
    installed ``frontier-rl``) and ``commit`` (of the checkout it is imported from, ``-dirty`` with local
    changes, None outside git). Commits are compared only where both sides know theirs.
    """
    for node in nodes:
        where = node.get("host", "?")
        if "error" in node:
            return (f"Node {where} cannot import the project ({node['error']}): install this checkout on every node "
                    f"({INSTALL_HINT} in a copy of it at commit {driver.get('commit') or 'of the driver'}).")
        same_version = node.get("version") == driver.get("version")
        same_commit = node.get("commit") is None or driver.get("commit") is None or node["commit"] == driver["commit"]
        if not (same_version and same_commit):
            return (f"Node {where} runs frontier-rl {node.get('version')} at commit {node.get('commit')}, the driver "
                    f"{driver.get('version')} at commit {driver.get('commit')}: check out the driver's commit on every "
                    f"node and run {INSTALL_HINT} there.")
    return None


_CHECKED_NODES: set[frozenset[str]] = set()
"""Sets of nodes already checked by :func:`check_cluster_code` in this process (a node joining is checked again)."""


def check_cluster_code(timeout: float = 120.0) -> None:
    """Run a tiny task on every alive node that imports ``rl`` and reports its version and commit; refuse a
    cluster where one differs from the driver's (its runs would train other code than the one recorded).

    Raises:
        ClusterError: a node cannot import the project, runs another version or commit, or does not answer.
    """
    ray = require_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    node_ids = frozenset(node["NodeID"] for node in nodes)
    if node_ids in _CHECKED_NODES:
        return
    probe = _make_probe()
    remote = ray.remote(probe)
    refs = [remote.options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote() for node in nodes]
    try:
        answers = ray.get(refs, timeout=timeout)
    except ray.exceptions.GetTimeoutError:
        raise ClusterError(f"A node did not answer the project check within {timeout:.0f} s: check `ray status` "
                           f"on the head node (see {DOCS_PAGE}).") from None
    message = compare_code(probe(), answers)
    if message:
        raise ClusterError(message)
    _CHECKED_NODES.add(node_ids)


def check_resources(cpus: float, gpus: float) -> None:
    """Refuse a per-task request no node can ever grant (Ray would leave the task pending forever).

    Raises:
        ClusterError: no alive node has ``cpus`` CPUs and ``gpus`` GPUs.
    """
    ray = require_ray()
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    if any(res.get("CPU", 0) >= cpus and res.get("GPU", 0) >= gpus for res in nodes):
        return
    largest = max(nodes, key=lambda res: (res.get("GPU", 0), res.get("CPU", 0)), default={})
    raise ClusterError(
        f"No node has {cpus:g} CPUs and {gpus:g} GPUs for one run (the largest has {largest.get('CPU', 0):g} CPUs "
        f"and {largest.get('GPU', 0):g} GPUs): lower --cpus-per-run/--gpus-per-run, or add such a node."
    )


# --- moving run folders between machines -------------------------------------------------------------------------


def _latest_step_dir(folder: Path) -> str | None:
    from rl.checkpoint import latest_checkpoint

    latest = latest_checkpoint(folder / CHECKPOINTS)
    return latest.name if latest is not None else None


def _npz_is_whole(data: bytes) -> bool:
    import numpy as np

    try:
        with np.load(io.BytesIO(data)) as archive:
            for name in archive.files:
                archive[name]
    except Exception:  # noqa: BLE001 - any failure to read means it was being written
        return False
    return True


class TornFileError(OSError):
    """A file changed while it was being packed (e.g. ``evaluations.npz`` rewritten): pack again later."""


def pack_folder(folder: str | os.PathLike) -> bytes | None:
    """The files of a run or result folder as a gzipped tar archive, None when the folder does not exist.

    Of ``checkpoints/`` only the newest complete checkpoint is packed (the one a resume loads); hidden files
    and folders never are (the runner's atomic writes in progress: ``.<name>.<pid>.tmp``, ``.tmp_step_*``).

    Raises:
        TornFileError: a file vanished or an ``.npz`` file was caught half written; pack again later.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None
    keep_step = _latest_step_dir(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            parts = relative.parts
            if parts[0] == CHECKPOINTS and (len(parts) == 1 or parts[1] != keep_step):
                continue
            if not path.is_file() or any(part.startswith(".") for part in parts):
                continue  # hidden: files being written atomically (.config.yml.<pid>.tmp, .tmp_step_*), staging
            try:
                data = path.read_bytes()
            except FileNotFoundError as error:
                raise TornFileError(f"{path} vanished while it was packed") from error
            if path.suffix == ".npz" and not _npz_is_whole(data):
                raise TornFileError(f"{path} was being written while it was packed")
            info = tarfile.TarInfo(relative.as_posix())
            info.size, info.mtime, info.mode = len(data), int(path.stat().st_mtime), 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def unpack_folder(data: bytes, destination: str | os.PathLike, *, keep_checkpoints: int = 2) -> None:
    """Write an archive of :func:`pack_folder` into ``destination``, replacing the files it holds.

    Every file is moved into place atomically (a reader sees the old file or the new one), a checkpoint
    folder as a whole, and ``run.json`` last, so a run never looks finished before its other files are there.
    Of the checkpoints, the newest ``keep_checkpoints`` are kept (the runner's own rule).
    """
    from rl.checkpoint import list_checkpoints

    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack_", dir=destination))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
            archive.extractall(staging, filter="data")
        steps = staging / CHECKPOINTS
        if steps.is_dir():
            (destination / CHECKPOINTS).mkdir(exist_ok=True)
            for step in steps.iterdir():
                target = destination / CHECKPOINTS / step.name
                if target.exists():
                    shutil.rmtree(target)
                os.replace(step, target)
            shutil.rmtree(steps)
        files = [path for path in staging.rglob("*") if path.is_file()]
        for path in sorted(files, key=lambda p: (p.relative_to(staging).as_posix() == RECORD_FILE, str(p))):
            target = destination / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    for old in list_checkpoints(destination / CHECKPOINTS)[:-keep_checkpoints] if keep_checkpoints > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


class RunStore:
    """Pinned to the driver's node (as a Ray actor): writes the run folders that tasks elsewhere send, under the
    driver's working directory, and hands the newest one back to a retried task."""

    def __init__(self, root: str) -> None:
        self.root = Path(root)

    def put(self, folder: str, data: bytes) -> None:
        """Unpack ``data`` (:func:`pack_folder`) into ``folder`` (relative to the driver's working directory)."""
        unpack_folder(data, self.root / folder)

    def get(self, folder: str) -> bytes | None:
        """``folder`` as :func:`pack_folder` packs it (newest checkpoint only), None when there is none."""
        for _ in range(5):
            try:
                return pack_folder(self.root / folder)
            except TornFileError:
                time.sleep(0.2)
        return pack_folder(self.root / folder)


class _CheckpointMirror(threading.Thread):
    """Sends a task's run folder to the driver's :class:`RunStore` each time a new checkpoint is complete."""

    def __init__(self, store: Any, folder: str, every: float) -> None:
        super().__init__(daemon=True, name="checkpoint-mirror")
        self.store, self.folder, self.every = store, folder, every
        self.sent: str | None = _latest_step_dir(Path(folder))
        self.done = threading.Event()

    def push(self) -> None:
        """Send the run folder now if a checkpoint newer than the last one sent is complete."""
        import ray

        latest = _latest_step_dir(Path(self.folder))
        if latest is None or latest == self.sent:
            return
        try:
            data = pack_folder(self.folder)
        except TornFileError:
            return  # the next round packs it again
        if data is not None:
            ray.get(self.store.put.remote(self.folder, data))
            self.sent = latest

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.push()


def _project_root() -> str | None:
    """The git checkout ``rl`` is imported from, or None."""
    root = Path(__file__).resolve().parents[1]
    return str(root) if (root / ".git").exists() else None


def run_task(
    spec: RunSpec, fn: Callable[[RunSpec], dict[str, Any]], *, driver_node: str, driver_cwd: str,
    store: Any = None, transfer: str = "auto", mirror_every: float = 5.0, git: bool = True,
) -> dict[str, Any]:
    """What one Ray task runs: ``fn(spec)`` in the driver's folders, or in a scratch folder whose files travel.

    On the driver's node (and ``transfer="auto"``) it only changes to the driver's working directory. Elsewhere
    it works in a fresh scratch folder: a retried run first gets its newest checkpoint back from ``store``, new
    checkpoints are mirrored to it while ``fn`` runs, and the outcome carries the run's files under ``"files"``
    (``{"<folder>": archive}``, written by the driver with :func:`write_files`). Absolute folders are shared
    storage and never travel. ``git`` records the worker checkout's commit in the run (as the driver would,
    working in its checkout).
    """
    import ray

    if not ray.get_gpu_ids():  # a run that asked for no GPU trains on the CPU (device "auto" would take one)
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if transfer == "auto" and ray.get_runtime_context().get_node_id() == driver_node:
        os.chdir(driver_cwd)
        return fn(spec)
    scratch = tempfile.mkdtemp(prefix="frontier-rl-run-")
    os.chdir(scratch)
    root = _project_root()
    if git and root is not None:  # the process ends with the task (max_calls=1): the variables go with it
        os.environ["GIT_DIR"], os.environ["GIT_WORK_TREE"] = os.path.join(root, ".git"), root
    mirror = None
    try:
        if store is not None and not os.path.isabs(spec.work_dir):
            previous = ray.get(store.get.remote(spec.work_dir))
            if previous is not None:
                unpack_folder(previous, spec.work_dir)
            mirror = _CheckpointMirror(store, spec.work_dir, mirror_every)
            mirror.start()
        outcome = fn(spec)
        if mirror is not None:
            mirror.done.set()
            mirror.join()
        files = {}
        for folder in (spec.work_dir, spec.result_dir):
            if not os.path.isabs(folder) and (data := pack_folder(folder)) is not None:
                files[folder] = data
        return {**outcome, "files": files}
    finally:
        if mirror is not None:
            mirror.done.set()
        os.chdir(tempfile.gettempdir())
        shutil.rmtree(scratch, ignore_errors=True)


def write_files(outcome: dict[str, Any], root: str | os.PathLike) -> dict[str, Any]:
    """Write the folders a task sent back (``outcome["files"]``) under ``root``; return the outcome without them.

    The run folder is written before the result folder, whose ``run.json`` marks the run finished.
    """
    files = outcome.pop("files", None) or {}
    spec = outcome.get("spec", {})
    order = [spec.get("work_dir"), spec.get("result_dir")]
    for folder in sorted(files, key=lambda f: order.index(f) if f in order else -1):
        unpack_folder(files[folder], Path(root) / folder)
    return outcome


class RayBackend:
    """Runs a benchmark's runs as Ray tasks, one per (algo, env, seed); implements :class:`rl.benchmark.Backend`.

    Args:
        address: The cluster to join (``auto``, or ``HOST:PORT`` of its head); None starts a local Ray
            instance with ``num_cpus`` CPUs (then shut down after the runs).
        num_cpus: CPUs of the local instance (None: all of this machine's).
        cpus_per_run: CPUs each task requests (the runs use one torch thread).
        gpus_per_run: GPUs each task requests (fractions share one GPU); 0 trains on the CPU.
        max_retries: Times Ray resubmits a task whose worker died; the retry resumes from the newest checkpoint.
        transfer: ``"auto"``: tasks on the driver's node use its folders, others work in a scratch folder
            whose checkpoints and results are sent to the driver; ``"always"``: every task works that way
            (workers that do not share the driver's disk although on its node, and tests).
        mirror_every: Seconds between looks for a new checkpoint to send to the driver.
        check_code: Check that every node imports the driver's version and commit of the project first
            (skipped for a local instance this back end starts).
    """

    def __init__(
        self, *, address: str | None = None, num_cpus: int | None = None, cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0, max_retries: int = 3, transfer: str = "auto", mirror_every: float = 5.0,
        check_code: bool = True,
    ) -> None:
        if transfer not in ("auto", "always"):
            raise ValueError(f"transfer must be 'auto' or 'always', got {transfer!r}")
        if cpus_per_run <= 0 or gpus_per_run < 0 or max_retries < 0:
            raise ClusterError(f"--cpus-per-run must be > 0, --gpus-per-run and --max-retries >= 0 (got "
                               f"{cpus_per_run}, {gpus_per_run}, {max_retries}).")
        self.address, self.num_cpus = address, num_cpus
        self.cpus_per_run, self.gpus_per_run, self.max_retries = cpus_per_run, gpus_per_run, max_retries
        self.transfer, self.mirror_every, self.check_code = transfer, mirror_every, check_code
        self._started = self._checked = False

    def start(self) -> None:
        """Connect (or start a local Ray instance) and check the cluster. :meth:`run_all` calls it; call it
        first to fail on a bad cluster before anything is written. A Ray instance started here is shut down
        at the end of :meth:`run_all` (or by :meth:`close`)."""
        ray = require_ray()
        if self._started or (ray.is_initialized() and self._checked):
            return
        self._started = connect(self.address, num_cpus=self.num_cpus)
        try:
            if self.check_code and not self._started:
                check_cluster_code()
            check_resources(self.cpus_per_run, self.gpus_per_run)
        except BaseException:
            self.close()
            raise
        self._checked = True

    def close(self) -> None:
        """Shut down the Ray instance :meth:`start` started, if any."""
        if self._started:
            require_ray().shutdown()
        self._started = self._checked = False

    def _store(self, driver_node: str, driver_cwd: str) -> Any:
        """The :class:`RunStore` actor on the driver's node; None on the local instance this back end started,
        where every task shares the driver's disk (on a cluster joined, nodes may join while the runs go on)."""
        ray = require_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        if self.transfer == "auto" and self._started:
            return None
        actor = ray.remote(num_cpus=0)(RunStore)
        return actor.options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(driver_node, soft=False),
        ).remote(driver_cwd)

    def run_all(self, specs: Sequence[RunSpec], fn: Callable[[RunSpec], dict[str, Any]]) -> Iterable[dict[str, Any]]:
        """Submit every run, then yield each outcome as it finishes (files already written on the driver)."""
        ray = require_ray()
        try:
            if specs:
                self.start()
                yield from self._run(ray, specs, fn)
        finally:
            self.close()

    def _run(self, ray: ModuleType, specs: Sequence[RunSpec], fn: Callable) -> Iterator[dict[str, Any]]:
        driver_node, driver_cwd = ray.get_runtime_context().get_node_id(), os.getcwd()
        store = self._store(driver_node, driver_cwd)
        from rl.run_record import git_commit

        task = ray.remote(max_calls=1)(run_task).options(  # a fresh worker process per run, as the process pool's
            num_cpus=self.cpus_per_run, num_gpus=self.gpus_per_run, max_retries=self.max_retries,
            retry_exceptions=False,
        )
        options = dict(driver_node=driver_node, driver_cwd=driver_cwd, store=store, transfer=self.transfer,
                       mirror_every=self.mirror_every, git=git_commit() is not None)
        pending = {task.remote(spec, fn, **options): (spec, time.time()) for spec in specs}
        try:
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                spec, submitted = pending.pop(ready)
                try:
                    outcome = ray.get(ready)
                except ray.exceptions.RayTaskError as error:  # fn itself raised (execute catches its own errors)
                    outcome = {"spec": asdict(spec), "wall_seconds": time.time() - submitted, "error": str(error)}
                except ray.exceptions.RayError as error:  # the worker died more often than max_retries allows
                    outcome = {"spec": asdict(spec), "wall_seconds": time.time() - submitted,
                               "error": f"the run's worker died {self.max_retries + 1} times; last: "
                                        + "".join(traceback.format_exception_only(error)).strip()}
                yield write_files(outcome, driver_cwd)
        finally:
            for ref in pending:  # interrupted: stop the rest (their checkpoints stay for the next invocation)
                ray.cancel(ref, force=True)
            if store is not None:
                ray.kill(store)
