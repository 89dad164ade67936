"""The package's layering (issue 15): pure maths imports no model stack, and no module reaches
for another module's private names."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rlspoof"


@pytest.mark.slow
@pytest.mark.parametrize("module", ["rlspoof.rewards", "rlspoof.algos", "rlspoof.metrics", "rlspoof.errors"])
def test_pure_maths_imports_no_model_stack(module):
    """Rewards, advantages, losses and metrics are plain torch/numpy: importing them must not
    drag in transformers, TRL, accelerate or peft (as importing ConfigError from configs did)."""
    heavy = ("transformers", "trl", "accelerate", "peft", "deepspeed")
    code = (f"import sys, {module}; "
            f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({heavy!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent)
    assert out.stdout.strip() == "[]", out.stdout


def _private_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rlspoof"):
                found += [f"{path.relative_to(PACKAGE.parent)}:{node.lineno}: {alias.name} from {node.module}"
                          for alias in node.names
                          if alias.name.startswith("_") and not alias.name.endswith("__")]
    return found


def test_no_module_imports_a_private_name_of_another():
    assert _private_imports() == []
