"""The layer order (settings <- protocol <- spec <- state <- components <- engine <- servers <-
deploy <- cli) holds: no module imports from a layer above its own.  `settings` is one module
at the bottom (every layer may read its run's settings); the others are packages."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "seldon_serving"
LAYERS = ["settings", "protocol", "spec", "state", "components", "engine", "servers", "deploy", "cli"]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != "seldon_serving":
        return None
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append(node.module)
    return found


def test_every_import_points_down_the_layers() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE.parent).with_suffix("")
        own = _layer(".".join(relative.parts))
        if own is None:
            continue
        for module in _imports(path):
            target = _layer(module)
            if target is not None and target > own:
                wrong.append(f"{relative} ({LAYERS[own]}) imports {module} ({LAYERS[target]})")
    assert not wrong, "\n".join(wrong)


def test_every_layer_exists() -> None:
    assert (PACKAGE / "settings.py").exists()
    assert all((PACKAGE / layer / "__init__.py").exists() for layer in LAYERS[1:])


def test_settings_import_nothing_of_the_package() -> None:
    assert not [m for m in _imports(PACKAGE / "settings.py") if m.startswith("seldon_serving")]
