"""The engine stays a plain library: every idc_engine module imports with fiftyone unavailable."""

import subprocess
import sys
from pathlib import Path

ENGINE = Path(__file__).resolve().parent.parent / "idc_engine"


def test_engine_never_imports_fiftyone():
    modules = sorted(
        "idc_engine." + ".".join(p.relative_to(ENGINE).with_suffix("").parts).removesuffix(".__init__")
        for p in ENGINE.rglob("*.py")
    )
    script = (
        "import sys\n"
        "sys.modules['fiftyone'] = None  # any `import fiftyone` now raises ImportError\n"
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.'))\n"
        "assert not any(m == 'fiftyone' or m.startswith('fiftyone.') for m in sys.modules if sys.modules[m])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
