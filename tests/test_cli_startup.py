"""`neonas --help` and the light packages start without torch; `import neonas` still registers
the NeoNeXt family with timm, whichever of the two is imported first.

Each check runs in a fresh interpreter: this test process has long imported torch.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from neonas.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "timm", "torchvision", "ray", "optuna", "fvcore", "matplotlib")


def run_python(code: str) -> str:
    """stdout of `code` in a fresh interpreter that imports this checkout's neonas."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def heavy_modules_after(code: str) -> list[str]:
    out = run_python(
        f"{code}\nimport sys\nprint('loaded:' + ','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    return [name for name in out.splitlines()[-1].removeprefix("loaded:").split(",") if name]


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_help_loads_no_torch_timm_or_ray(argv):
    code = f"from neonas.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass"
    assert heavy_modules_after(code) == []


def test_the_search_package_loads_no_torch_or_ray_as_its_docstring_says():
    loaded = heavy_modules_after("import neonas.search")
    assert not {"torch", "timm", "torchvision", "ray"} & set(loaded), loaded


def test_import_neonas_loads_no_torch_yet_timm_then_creates_the_family():
    code = (
        "import sys, neonas\n"
        "print(sorted(m for m in ('torch', 'timm') if m in sys.modules))\n"
        "import timm\n"
        "model = timm.create_model('neonext_tiny', num_classes=3)\n"
        "names = {'neonext_tiny', 'neonext_small', 'neonext_base'}\n"
        "print(type(model).__name__, model.num_classes, names <= set(timm.list_models()))\n"
        "print(neonas.models.build_model.__name__)"
    )
    assert run_python(code).splitlines()[-3:] == [
        "[]",
        "NeoNeXt 3 True",
        "build_model",
    ]


@pytest.mark.slow
@pytest.mark.parametrize(
    "imports", ["import timm\nimport neonas", "import neonas.ops\nimport timm"]
)
def test_the_family_is_registered_whatever_was_imported_before(imports):
    names = "{'neonext_tiny', 'neonext_small', 'neonext_base'}"
    code = f"{imports}\nprint({names} <= set(timm.list_models()))"
    assert run_python(code).splitlines()[-1] == "True"
