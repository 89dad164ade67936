"""The package metadata declares supported ranges (issue 16); constraints.txt pins the tested set
inside them, and the environment the tests run in satisfies the ranges."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11

REPO = Path(__file__).resolve().parents[1]
#: The ML stack whose APIs rlspoof builds on: declared as ranges, never as exact pins.
STACK = ("torch", "transformers", "trl", "accelerate", "peft", "evaluate", "deepspeed",
         "onnx", "onnxscript", "onnxruntime")
#: Pinned for a reproducible install but not declared: what a declared package pulls in and
#: rlspoof never imports (onnxscript's and torch's exporter's IR library).
PINNED_ONLY = ("onnx-ir",)


def _requirements() -> dict[str, Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + [r for extra in project["optional-dependencies"].values()
                                       for r in extra]
    return {req.name: req for req in map(Requirement, lines)}


def _constraints() -> dict[str, Version]:
    pins = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", line
            pins[req.name] = Version(spec.version)
    return pins


def test_the_ml_stack_is_declared_as_ranges_and_pinned_only_in_constraints():
    requirements, pins = _requirements(), _constraints()
    assert set(STACK) <= set(requirements) and set(STACK) | set(PINNED_ONLY) == set(pins)
    assert not set(PINNED_ONLY) & set(requirements)
    for name in STACK:
        operators = {spec.operator for spec in requirements[name].specifier}
        assert ">=" in operators and "==" not in operators, requirements[name]
        assert requirements[name].specifier.contains(pins[name]), (requirements[name], pins[name])
    # torch is not capped in the metadata: the cap that keeps pip on the CPU wheel is ours
    assert all(spec.operator == ">=" for spec in requirements["torch"].specifier)


def test_the_installed_stack_is_inside_the_declared_ranges():
    for name, req in _requirements().items():
        try:
            installed = Version(version(name))
        except PackageNotFoundError:
            continue  # an extra that is not installed
        assert req.specifier.contains(installed, prereleases=True), (name, str(installed), str(req))
