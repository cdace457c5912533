"""The shape of the package: import direction, a light root, models in the namespace."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "htmp_infer"

#: Layers, lowest first: a module may import only from its own layer or below.
ORDER = [
    "_x64",
    "_numerics",
    "errors",
    "_spectrum_checks",
    "io",
    "_cache",
    "spectrum",
    "ensembles",
    "limit",
    "meanfield",
    "mechanisms",
    "models",
    "inference",
    "validation",
    "plotting",
    "networks",
    "cli",
]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "htmp_infer" or len(parts) == 1:
        return None
    return ORDER.index(parts[1]) if parts[1] in ORDER else None


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "htmp_infer":  # from htmp_infer import models
                out += [f"htmp_infer.{a.name}" for a in node.names]
            else:
                out.append(node.module)
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def _modules() -> list[tuple[str, Path]]:
    mods = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
        mods.append((".".join(parts), path))
    return mods


def test_imports_go_one_way():
    upward = []
    for module, path in _modules():
        me = _layer(module)
        if me is None:
            continue
        for target in _imports(path):
            other = _layer(target)
            if other is not None and other > me:
                upward.append(f"{module} -> {target}")
    assert not upward, upward


def test_every_subpackage_says_what_it_owns():
    for init in ROOT.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert len(doc.split()) >= 20, f"{init.parent.name}: no docstring paragraph"


def test_module_sizes():
    sizes = {m: len(p.read_text().splitlines()) for m, p in _modules()}
    assert max(sizes.values()) <= 500, max(sizes.items(), key=lambda kv: kv[1])


def _run(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True
    )


def test_root_import_is_light(tmp_path):
    heavy = ["jax", "numpyro", "pandas", "xarray", "arviz_base", "matplotlib"]
    code = (
        "import sys, htmp_infer\n"
        f"print(sorted(set({heavy!r}) & set(sys.modules)))\n"
        "print(sorted(htmp_infer.__all__))\n"
    )
    proc = _run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    loaded, names = proc.stdout.splitlines()
    assert loaded == "[]"
    for name in ["fit", "compare", "scan", "ScanOptions", "Spectrum", "simulate"]:
        assert repr(name) in names


@pytest.mark.parametrize("name", ["fit", "compare", "scan", "summarize", "simulate"])
def test_root_names_resolve(name):
    import htmp_infer

    assert callable(getattr(htmp_infer, name))


def test_models_live_in_the_namespace(tmp_path):
    bare = _run("import models", tmp_path)
    assert bare.returncode != 0 and "Error" in bare.stderr
    proc = _run("import htmp_infer.models as m; print(sorted(m.REGISTRY))", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "htmp" in proc.stdout and "power_law" in proc.stdout
