"""Checking an export with TF Serving's C++ loader, without Python: build and run ``load_and_run``.

``servability/load_and_run.cc`` is compiled once against the installed TensorFlow wheel (its
``include/``, ``libtensorflow_cc.so.2`` and ``libtensorflow_framework.so.2``) and cached. It
loads the op libraries a TF Serving build links (TF Text's for ``stock``; plus ScaNN's for
``scann``), loads the export with ``tensorflow::LoadSavedModel`` (tag ``serve``), and runs
``serving_default``. Graph functions are only instantiated on the first request, so an op
missing from the build shows up in the ``run`` stage, as on TF Serving's first (or warmup) request.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import tensorflow as tf

from tfrecs_llm.export.op_audit import TARGET_LIBRARIES
from tfrecs_llm.export.predict import resolve_version_dir

SOURCE = Path(__file__).with_name("servability") / "load_and_run.cc"
DEFAULT_TEXTS = ("stories about astronauts, rockets and distant planets", "easy Italian pasta recipes")

# Op libraries per package, relative to the package folder. A stock TF Serving links every
# TF Text op, so all of TF Text's op libraries are loaded, not only the ones a graph needs.
_OP_LIBRARY_GLOBS = {"tensorflow_text": "python/**/_*.so", "scann": "scann_ops/cc/_scann_ops.so"}
_TF_LIBRARIES = ("libtensorflow_cc.so.2", "libtensorflow_framework.so.2")
_MISSING_OP = re.compile(r"Op type not registered '([^']+)'")


class ServabilityToolError(RuntimeError):
    """The C++ check cannot be built or started here (no compiler, headers or libraries)."""


@dataclasses.dataclass(frozen=True)
class ServabilityResult:
    """What TF Serving's loader did with one export, linked with one target's op libraries.

    ``stage`` names the failing step (``op_library``, ``load``, ``signature``, ``run``,
    ``output``, ``crash`` or ``timeout``) and ``error`` its message; both are None on success.
    ``recommendations`` holds per text ``(item_id, score)`` pairs, best first.
    """

    export_dir: Path
    target: str
    op_libraries: tuple[Path, ...]
    recommendations: list[list[tuple[str, float]]] = dataclasses.field(default_factory=list)
    load_seconds: float | None = None
    run_seconds: float | None = None
    stage: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the export loaded and ``serving_default`` answered every text."""
        return self.error is None

    @property
    def missing_op(self) -> str | None:
        """The op type the loader reported as not registered, if that is why it failed."""
        found = _MISSING_OP.search(self.error or "")
        return found.group(1) if found else None

    def format(self) -> str:
        """A human-readable summary (the ``tfrecs-llm audit`` output)."""
        if not self.ok:
            lines = [f"NOT servable by a {self.target!r} TF Serving build ({self.stage}): {self.error}"]
            if self.missing_op:
                lines.append(
                    f"  {self.missing_op} is the first op this build lacks; the op audit lists all of them"
                )
            return "\n".join(lines)
        top = ", ".join(f"{item} ({score:.3f})" for item, score in self.recommendations[0][:3])
        return (
            f"servable by a {self.target!r} TF Serving build: loaded in {self.load_seconds:.1f} s, "
            f"serving_default answered {len(self.recommendations)} texts in {self.run_seconds:.1f} s "
            f"(first text: {top})"
        )


def _package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)  # Locates without importing.
    if spec is None or not spec.submodule_search_locations:
        raise ServabilityToolError(
            f"the op libraries of {package} are needed: "
            f"pip install -c constraints.txt {package.replace('_', '-')}"
        )
    return Path(spec.submodule_search_locations[0])


def op_libraries(target: str) -> list[Path]:
    """The op library ``.so`` files a ``target`` TF Serving build links besides core TensorFlow."""
    if target not in TARGET_LIBRARIES:
        raise ValueError(f"target must be one of {sorted(TARGET_LIBRARIES)}, got {target!r}")
    found = []
    for package in TARGET_LIBRARIES[target]:
        if package in _OP_LIBRARY_GLOBS:
            libraries = sorted(_package_dir(package).glob(_OP_LIBRARY_GLOBS[package]))
            if not libraries:
                raise ServabilityToolError(f"{package} holds no op library {_OP_LIBRARY_GLOBS[package]}")
            found += libraries
    return found


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tfrecs_llm"


def build_load_and_run(cache_dir: str | Path | None = None) -> Path:
    """Compiles ``load_and_run.cc`` against the installed TensorFlow once; returns the binary.

    The binary is cached under ``cache_dir`` (default ``~/.cache/tfrecs_llm``) in a folder named
    after a hash of the source, the TensorFlow version and the compile command.
    """
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++"]
    compiler = next((shutil.which(name) for name in candidates if shutil.which(name)), None)
    if compiler is None:
        raise ServabilityToolError(
            f"no C++ compiler found (looked for {' and '.join(candidates)}); install one "
            "(apt-get install g++) or point the CXX environment variable at one"
        )
    include, lib = Path(tf.sysconfig.get_include()), Path(tf.sysconfig.get_lib())
    needed = [include / "tensorflow/cc/saved_model/loader.h", *(lib / name for name in _TF_LIBRARIES)]
    missing = [str(path) for path in needed if not path.is_file()]
    if missing:
        raise ServabilityToolError(
            f"the TensorFlow {tf.__version__} wheel lacks {', '.join(missing)}; "
            "the check needs a tensorflow wheel from PyPI (it ships the C++ headers and libraries)"
        )
    # -isystem keeps TensorFlow's own header warnings out. libtensorflow_cc must stay linked for
    # its static initializers (the DirectSession factory, the kernels), not only for the symbols
    # the program calls (TF_LoadLibrary): --no-as-needed stops as-needed toolchains dropping it.
    # The rpath finds both libraries without LD_LIBRARY_PATH.
    flags = [f for f in tf.sysconfig.get_compile_flags() if not f.startswith("-I")]
    command = [
        compiler, "-O2", "-isystem", str(include), *flags, str(SOURCE), f"-L{lib}",
        "-Wl,--no-as-needed", *(f"-l:{name}" for name in _TF_LIBRARIES), f"-Wl,-rpath,{lib}",
    ]  # fmt: skip
    key = hashlib.sha256(SOURCE.read_bytes() + json.dumps([tf.__version__, command]).encode()).hexdigest()
    binary = Path(cache_dir or _cache_root()) / f"servability-{key[:16]}" / "load_and_run"
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(f"load_and_run.{os.getpid()}.partial")
    built = subprocess.run([*command, "-o", str(partial)], capture_output=True, text=True, check=False)
    if built.returncode != 0:
        raise ServabilityToolError(f"compiling {SOURCE.name} failed:\n{built.stderr[-3000:]}")
    os.replace(partial, binary)  # Atomic: concurrent builds never run a half-written binary.
    return binary


def _result_from_output(
    run: subprocess.CompletedProcess, export_dir: Path, target: str, libraries: list[Path]
) -> ServabilityResult:
    lines = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    base = {"export_dir": export_dir, "target": target, "op_libraries": tuple(libraries)}
    if run.returncode != 0:
        if lines and "error" in lines[-1]:
            return ServabilityResult(**base, stage=lines[-1]["stage"], error=lines[-1]["error"])
        error = f"exit status {run.returncode}: {run.stderr[-2000:]}"
        return ServabilityResult(**base, stage="crash", error=error)
    *rows, timing = lines
    recommendations = [list(zip(row["item_ids"], row["scores"])) for row in rows]
    return ServabilityResult(**base, recommendations=recommendations, **timing)


def check_servable(
    export_dir: str | Path,
    target: str = "stock",
    texts: Sequence[str] = DEFAULT_TEXTS,
    timeout: float = 300.0,
) -> ServabilityResult:
    """Loads an export with TF Serving's C++ loader and ``target``'s op libraries, then runs
    ``serving_default`` on ``texts``.

    ``export_dir``: a version folder or a model folder (its latest version). ``target``:
    ``stock`` (TensorFlow + TF Text ops) or ``scann`` (plus ScaNN's ops). A failure to load or
    run is reported in the result; a missing compiler or TensorFlow C++ files raise
    :class:`ServabilityToolError`.
    """
    export_dir = resolve_version_dir(export_dir)
    if not (export_dir / "saved_model.pb").is_file():
        raise FileNotFoundError(
            f"{export_dir} holds no saved_model.pb; expected a version folder such as saved_models/demo/1"
        )
    if not texts or any("\n" in text for text in texts):
        raise ValueError("texts must be non-empty, single-line strings (they are sent one per line)")
    libraries = op_libraries(target)
    binary = build_load_and_run()
    try:
        run = subprocess.run(
            [str(binary), str(export_dir), *map(str, libraries)],
            input="".join(f"{text}\n" for text in texts),
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        error = f"no answer within {timeout:.0f} s"
        return ServabilityResult(export_dir, target, tuple(libraries), stage="timeout", error=error)
    return _result_from_output(run, export_dir, target, libraries)
