"""Finding the user's class from `MyModel` / `pkg.module.Class`, with one-sentence errors."""

from __future__ import annotations

import itertools
import sys
import textwrap
from pathlib import Path

import pytest

from seldon_serving.components.loader import ComponentLoadError, instantiate, load_user_class

_counter = itertools.count()


def _unique(prefix: str) -> str:
    # Module names are cached in sys.modules, so each test writes its own.
    return f"{prefix}{next(_counter)}_{id(_counter)}"


def _write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))


def test_module_name_alone_means_class_of_same_name(tmp_path: Path) -> None:
    name = _unique("MyModel")
    _write(tmp_path / f"{name}.py", f"class {name}:\n    def predict(self, X, names):\n        return X\n")
    cls = load_user_class(name, [tmp_path])
    assert cls.__name__ == name
    assert str(tmp_path.resolve()) in sys.path


def test_working_directory_is_searched_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    name = _unique("CwdModel")
    _write(tmp_path / f"{name}.py", f"class {name}:\n    pass\n")
    monkeypatch.chdir(tmp_path)
    assert load_user_class(name).__name__ == name


def test_dotted_module_and_class(tmp_path: Path) -> None:
    pkg = _unique("pkg")
    _write(tmp_path / pkg / "__init__.py", "")
    _write(tmp_path / pkg / "models.py", "class Iris:\n    pass\n")
    assert load_user_class(f"{pkg}.models.Iris", [tmp_path]).__name__ == "Iris"


def test_dotted_module_holding_class_of_its_own_name(tmp_path: Path) -> None:
    pkg = _unique("pkg")
    _write(tmp_path / pkg / "__init__.py", "")
    _write(tmp_path / pkg / "Scorer.py", "class Scorer:\n    pass\n")
    assert load_user_class(f"{pkg}.Scorer", [tmp_path]).__name__ == "Scorer"


def test_trailing_py_is_forgiven(tmp_path: Path) -> None:
    name = _unique("Typed")
    _write(tmp_path / f"{name}.py", f"class {name}:\n    pass\n")
    assert load_user_class(f"{name}.py", [tmp_path]).__name__ == name


def test_missing_module_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ComponentLoadError) as caught:
        load_user_class("NoSuchModelAnywhere", [tmp_path])
    message = str(caught.value)
    assert "no module named 'NoSuchModelAnywhere'" in message
    assert str(tmp_path.resolve()) in message


def test_missing_class_names_module_and_class(tmp_path: Path) -> None:
    name = _unique("Empty")
    _write(tmp_path / f"{name}.py", "x = 1\n")
    with pytest.raises(ComponentLoadError, match=f"module '{name}' .* has no class '{name}'"):
        load_user_class(name, [tmp_path])


def test_failing_import_carries_the_modules_own_message_not_a_traceback(tmp_path: Path) -> None:
    name = _unique("Broken")
    _write(tmp_path / f"{name}.py", "import definitely_not_installed_pkg\n")
    with pytest.raises(ComponentLoadError) as caught:
        load_user_class(name, [tmp_path])
    message = str(caught.value)
    expected = "ModuleNotFoundError: No module named 'definitely_not_installed_pkg'"
    assert message == f"importing module '{name}' failed: {expected}"
    assert "Traceback" not in message and "\n" not in message


def test_exception_at_import_time(tmp_path: Path) -> None:
    name = _unique("Raises")
    _write(tmp_path / f"{name}.py", "raise RuntimeError('model file missing')\n")
    with pytest.raises(ComponentLoadError, match="RuntimeError: model file missing"):
        load_user_class(name, [tmp_path])


def test_syntax_error_is_reported(tmp_path: Path) -> None:
    name = _unique("Syntax")
    _write(tmp_path / f"{name}.py", "class :\n")
    with pytest.raises(ComponentLoadError, match=f"importing module '{name}' failed: SyntaxError"):
        load_user_class(name, [tmp_path])


def test_name_that_is_not_a_class(tmp_path: Path) -> None:
    name = _unique("Func")
    _write(tmp_path / f"{name}.py", f"def {name}():\n    pass\n")
    with pytest.raises(ComponentLoadError, match="is a function, not a class"):
        load_user_class(name, [tmp_path])


def test_invalid_interface_name() -> None:
    with pytest.raises(ComponentLoadError, match=r"not a valid module or module\.Class name"):
        load_user_class("my-model")


def test_instantiate_passes_parameters_and_explains_a_bad_one() -> None:
    class Router:
        def __init__(self, n_branches: int, epsilon: float = 0.1) -> None:
            self.n_branches = n_branches
            self.epsilon = epsilon

    router = instantiate(Router, {"n_branches": 3, "epsilon": 0.5})
    assert (router.n_branches, router.epsilon) == (3, 0.5)
    with pytest.raises(ComponentLoadError, match=r"creating Router.*unexpected keyword argument 'typo'"):
        instantiate(Router, {"n_branches": 3, "typo": 1})


def test_an_edited_module_is_loaded_again(tmp_path: Path) -> None:
    import os
    import time

    from seldon_serving.components.loader import load_user_class

    source = tmp_path / "EditedModel.py"
    source.write_text("class EditedModel:\n    version = 1\n")
    assert load_user_class("EditedModel", [tmp_path]).version == 1
    source.write_text("class EditedModel:\n    version = 2\n")
    later = time.time() + 5
    os.utime(source, (later, later))
    assert load_user_class("EditedModel", [tmp_path]).version == 2
