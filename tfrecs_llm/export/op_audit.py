"""Which op types a SavedModel needs, and whether a TF Serving build registers all of them.

A stock TF Serving 2.20 binary registers core TensorFlow's ops and TF Text's ops; ScaNN's ops
need a custom build. The registered sets are introspected in a clean Python subprocess (only
tensorflow, tensorflow_text and scann imported), so they match the installed wheels exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

from tensorflow.core.protobuf import saved_model_pb2

from tfrecs_llm.export.predict import resolve_version_dir

TARGET_LIBRARIES: dict[str, tuple[str, ...]] = {
    "stock": ("tensorflow", "tensorflow_text"),
    "scann": ("tensorflow", "tensorflow_text", "scann"),
}
"""Per audit target, the Python packages whose ops that TF Serving build links."""

LIBRARY_NAMES = {"tensorflow": "core TensorFlow", "tensorflow_text": "TF Text", "scann": "ScaNN"}

PYTHON_ONLY_OPS = frozenset({"PyFunc", "PyFuncStateless", "EagerPyFunc"})
"""Registered by core TensorFlow, but their kernels call back into Python: no server runs them."""

_SERVE_TAG = "serve"

# Each library's ops are what importing it adds to the registry; later imports are additive.
_REGISTRY_SCRIPT = """
import importlib, importlib.metadata, json
from tensorflow.core.framework import op_def_pb2
from tensorflow.python.client import pywrap_tf_session as c_api

def registered():
    ops = op_def_pb2.OpList()
    ops.ParseFromString(c_api.TF_GetBuffer(c_api.TF_GetAllOpList()))
    return {op.name for op in ops.op}

seen, found = set(), {}
for name in ("tensorflow", "tensorflow_text", "scann"):
    try:
        module = importlib.import_module(name)
    except ImportError:
        found[name] = None
        continue
    now = registered()
    version = getattr(module, "__version__", None) or importlib.metadata.version(name)
    found[name] = {"version": version, "ops": sorted(now - seen)}
    seen |= now
print(json.dumps(found))
"""


@functools.cache
def registered_ops() -> dict[str, dict | None]:
    """Per library, ``{"version": str, "ops": [names]}`` (None when not installed); cached."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", _REGISTRY_SCRIPT], capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"listing the registered TensorFlow ops failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def saved_model_op_types(export_dir: str | Path) -> set[str]:
    """Op types of the ``serve`` meta graph: its nodes and every function in its library.

    A node whose type names a library function is a call, not an op, and is left out.
    """
    pb = Path(export_dir) / "saved_model.pb"
    if not pb.is_file():
        raise FileNotFoundError(f"{pb} does not exist; expected a SavedModel version folder")
    saved_model = saved_model_pb2.SavedModel.FromString(pb.read_bytes())
    tags = [list(graph.meta_info_def.tags) for graph in saved_model.meta_graphs]
    serving = [g for g in saved_model.meta_graphs if _SERVE_TAG in g.meta_info_def.tags]
    if not serving:
        raise ValueError(f"{pb} has no meta graph tagged {_SERVE_TAG!r} (TF Serving loads it); tags: {tags}")
    graph = serving[0].graph_def
    functions = {f.signature.name for f in graph.library.function}
    ops = {node.op for node in graph.node}
    for function in graph.library.function:
        ops |= {node.op for node in function.node_def}
    return ops - functions


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """The op types of one SavedModel against the ops one TF Serving build registers."""

    export_dir: Path
    target: str
    target_versions: dict[str, str]
    op_types: tuple[str, ...]
    library_of: dict[str, str | None]
    """Op type -> the package registering it (``tensorflow``, ``tensorflow_text``, ``scann``), or None."""
    outside_target: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """True when the target build registers every op type (and none needs Python)."""
        return not self.outside_target

    def ops_from(self, library: str | None) -> tuple[str, ...]:
        """The op types registered by ``library`` (None: by no known library)."""
        return tuple(op for op in self.op_types if self.library_of[op] == library)

    @property
    def namespaced(self) -> dict[str, tuple[str, ...]]:
        """Op types in a ``Namespace>Op`` namespace (``TFText``, ``Scann``), per namespace."""
        spaces: dict[str, list[str]] = {}
        for op in self.op_types:
            if ">" in op:
                spaces.setdefault(op.split(">", 1)[0], []).append(op)
        return {space: tuple(ops) for space, ops in spaces.items()}

    def format(self) -> str:
        """A human-readable report (the ``tfrecs-llm audit`` output)."""
        build = " + ".join(f"{LIBRARY_NAMES[n]} {v}" for n, v in self.target_versions.items())
        lines = [
            f"SavedModel {self.export_dir}",
            f"target {self.target!r}: {build}",
            f"{len(self.op_types)} op types:",
        ]
        for library in (*LIBRARY_NAMES, None):
            ops = self.ops_from(library)
            if ops:
                label = LIBRARY_NAMES[library] if library else "registered by no known library"
                lines.append(f"  {label} ({len(ops)}): {', '.join(ops)}")
        for space, ops in self.namespaced.items():
            lines.append(f"  namespace {space}>: {', '.join(ops)}")
        if self.ok:
            lines.append(f"OK: a {self.target!r} TF Serving build registers every op type")
        else:
            lines.append(f"NOT SERVABLE by a {self.target!r} build, missing {len(self.outside_target)} op types:")
            for op in self.outside_target:
                lines.append(f"  {op}: {self._why_missing(op)}")
        return "\n".join(lines)

    def _why_missing(self, op: str) -> str:
        if op in PYTHON_ONLY_OPS:
            return "its kernel runs Python code"
        library = self.library_of[op]
        return f"registered by {LIBRARY_NAMES[library]}" if library else "registered by no known library"


def audit_saved_model(export_dir: str | Path, target: str = "stock") -> AuditReport:
    """Lists the op types of an export and which of them a ``target`` TF Serving build lacks.

    ``export_dir``: a version folder (``saved_models/demo/1``) or a model folder (its latest
    version). ``target``: ``stock`` (TensorFlow + TF Text, as in ``tensorflow/serving:2.20.0``) or
    ``scann`` (stock plus ScaNN's ops, a custom build).
    """
    if target not in TARGET_LIBRARIES:
        raise ValueError(f"target must be one of {sorted(TARGET_LIBRARIES)}, got {target!r}")
    export_dir = resolve_version_dir(export_dir)
    op_types = tuple(sorted(saved_model_op_types(export_dir)))
    registry = registered_ops()
    for library in TARGET_LIBRARIES[target]:
        if registry[library] is None:
            raise ImportError(
                f"the {target!r} audit needs the {library} package: "
                f"pip install -c constraints.txt {library.replace('_', '-')}"
            )
    library_of = {
        op: next((lib for lib, found in registry.items() if found and op in found["ops"]), None)
        for op in op_types
    }
    outside = tuple(
        op
        for op in op_types
        if library_of[op] not in TARGET_LIBRARIES[target] or op in PYTHON_ONLY_OPS
    )
    versions = {lib: registry[lib]["version"] for lib in TARGET_LIBRARIES[target]}
    return AuditReport(export_dir, target, versions, op_types, library_of, outside)
