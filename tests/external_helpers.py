"""What the external baselines' tests share (``test_external_imitation``, ``test_external_pgmorl``,
``test_external_d3rlpy``): loading a child script by path, checking what it imports, fake python executables and
fake venvs and the fake child they run, the venv's location.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import stat
import sys
from pathlib import Path
from types import ModuleType

import pytest

from rl.external.pinned_venv import marker_path, venv_python

CHILD_IO = Path(__file__).resolve().parents[1] / "rl" / "external" / "child_io.py"
"""The child scripts' shared helpers, loaded by each script from beside itself."""


def load_script(path: str | Path, name: str) -> ModuleType:
    """The child script at ``path`` loaded by path as module ``name`` (as its venv's python would, without
    ``rl/__init__``): only its module-level imports (the standard library and numpy) run."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def imported_roots(path: str | Path) -> tuple[set[str], set[str]]:
    """The top-level packages that the file at ``path`` imports outside the standard library: anywhere, and in its
    module-level statements."""
    tree = ast.parse(Path(path).read_text())
    imported, top_level = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            roots = {name.split(".")[0] for name in names}
            imported |= roots
            if node in tree.body:
                top_level |= roots
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    return imported - stdlib, top_level - stdlib


def check_script_imports(script: str | Path, third_party: set[str]) -> None:
    """The child script imports exactly ``third_party`` besides the standard library (all in its venv), only numpy at
    module level (so the tests can load it here); so does ``child_io.py`` it loads (numpy, and torch inside a
    function), never the project."""
    imported, top_level = imported_roots(script)
    assert imported == third_party
    assert top_level == {"numpy"}
    imported, top_level = imported_roots(CHILD_IO)
    assert imported <= {"numpy", "torch"} <= third_party and top_level == {"numpy"}


def fake_script(body: str) -> str:
    """A python script run by this venv's python, with ``json``, ``os`` and ``sys`` imported, running ``body``."""
    return f"#!{sys.executable}\nimport json, os, sys\n{body}\n"


def fake_python(folder: Path, body: str, name: str = "fake-python") -> Path:
    """An executable ``folder/name`` that runs ``body`` (:func:`fake_script`): a stand-in for a venv's python."""
    path = folder / name
    path.write_text(fake_script(body))
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def make_venv_dir(path: Path, marker: dict | None, python_text: str = "") -> Path:
    """A venv folder at ``path`` whose python is an executable file holding ``python_text``, with the completion
    ``marker`` unless None; its python."""
    python = venv_python(path)
    python.parent.mkdir(parents=True)
    python.write_text(python_text)
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    if marker is not None:
        marker_path(path).write_text(json.dumps(marker))
    return python


def check_venv_location(venv_module: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                        default_name: str) -> None:
    """The baseline's venv (``venv_module``: ``rl.external.<...>_venv``) is at ``$<its VENV_ENV_VAR>`` when set,
    else at ``~/.frontier-rl/venvs/<default_name>``."""
    monkeypatch.setenv(venv_module.VENV_ENV_VAR, str(tmp_path / "v"))
    assert venv_module.venv_path() == tmp_path / "v"
    monkeypatch.delenv(venv_module.VENV_ENV_VAR)
    assert venv_module.venv_path() == Path.home() / ".frontier-rl" / "venvs" / default_name


def fake_venv(folder: Path, body: str, marker: dict) -> Path:
    """``folder/venv`` marked with ``marker`` (say, complete), whose python runs ``body`` (:func:`fake_script`)."""
    path = folder / "venv"
    make_venv_dir(path, marker, fake_script(body))
    return path


def fake_child(record: str, chatter: str) -> str:
    """The body of a fake venv python (:func:`fake_venv`) that stands in for a child script, fast: it loads the
    script (``sys.argv[1]``) by path (numpy only), parses the rest of its command line with the script's own
    ``parse_args``, counts the run (a line in ``$CALLS``, see :func:`count_child_runs`), prints ``chatter`` and
    writes with the script's ``write_json_atomic`` to ``--out`` the dict ``record`` (python source over ``m``, the
    script, and ``args``) plus what the parent gave the child: ``argv``, ``omp`` (``$OMP_NUM_THREADS``),
    ``pythonpath`` (``$PYTHONPATH``) and ``cwd``."""
    return (
        "import importlib.util\n"
        "spec = importlib.util.spec_from_file_location('child_under_test', sys.argv[1])\n"
        "m = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(m)\n"
        "args = m.parse_args(sys.argv[2:])\n"
        "open(os.environ['CALLS'], 'a').write('run\\n')\n"
        f"print({chatter!r})\n"
        f"record = {{**{record}, 'argv': sys.argv[1:], 'omp': os.environ.get('OMP_NUM_THREADS'),\n"
        "          'pythonpath': os.environ.get('PYTHONPATH'), 'cwd': os.getcwd()}\n"
        "m.write_json_atomic(args.out, record)\n"
    )


def count_child_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The file a :func:`fake_child` counts its runs in (``$CALLS``); also sets a ``PYTHONPATH`` that the child
    must not get."""
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    calls = tmp_path / "calls"
    monkeypatch.setenv("CALLS", str(calls))
    return calls
