"""The code fingerprint (which files count, and that only their contents do), how the records
and the loader act on it, and one `--reload` pass (`Reloader.reconcile`) without processes."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from seldon_serving.components.loader import code_files, load_user_class
from seldon_serving.deploy.control import ControlPlane
from seldon_serving.deploy.files import check_code, code_fingerprint, collect
from seldon_serving.deploy.records import CODE_CHANGED, CONFIGURED, CREATED, UNCHANGED, Records
from seldon_serving.deploy.reload import Reloader
from seldon_serving.engine.plane import DataPlane
from seldon_serving.protocol.message import NDARRAY, SeldonMessage
from seldon_serving.servers.oauth import OAuthService
from seldon_serving.spec import ManifestError
from seldon_serving.state import MemoryStore
from tests.deploy.gateway import deployment, example_model, unit, write

_names = itertools.count()


def unique(prefix: str) -> str:
    """A module name no other test uses (the loader's modules live in this process's sys.modules)."""
    return f"{prefix}{os.getpid()}x{next(_names)}"


def model_source(value: float, cls: str = "Model", imports: str = "") -> str:
    return f"{imports}class {cls}:\n    def predict(self, X, names=None):\n        return [[{value}]]\n"


def records() -> Records:
    store = MemoryStore()
    return Records(store, OAuthService(store))


# --- which files are code ----------------------------------------------------------------------------


def test_code_is_the_directorys_python_files_and_its_packages(tmp_path: Path) -> None:
    for name in ("Model.py", "helper.py", "pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/deep.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    # not code: a directory that is no package (a virtualenv, data), hidden files, bytecode, other files
    for name in ("venv/lib/site.py", ".hidden.py", "__pycache__/Model.cpython-311.py", "notes.txt", "d.yaml"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x = 1\n")
    found = [p.relative_to(tmp_path).as_posix() for p in code_files(tmp_path)]
    assert found == ["Model.py", "helper.py", "pkg/__init__.py", "pkg/sub/__init__.py", "pkg/sub/deep.py"]


def test_the_fingerprint_follows_contents_not_times(tmp_path: Path) -> None:
    model, helper = tmp_path / "Model.py", tmp_path / "helper.py"
    model.write_text(model_source(1.0))
    helper.write_text("VALUE = 1\n")
    first = code_fingerprint(["Model"], tmp_path)
    assert first is not None and code_fingerprint(["Model"], str(tmp_path)) == first

    os.utime(model, (1, 1))  # a touch
    model.write_text(model.read_text())  # an editor saving the same text
    assert code_fingerprint(["Model"], tmp_path) == first

    (tmp_path / "notes.txt").write_text("not code")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "script.py").write_text("not a package's")
    assert code_fingerprint(["Model"], tmp_path) == first

    helper.write_text("VALUE = 2\n")  # a helper module is code too
    second = code_fingerprint(["Model"], tmp_path)
    assert second != first
    model.write_text(model_source(2.0))
    assert code_fingerprint(["Model"], tmp_path) not in (first, second)
    helper.rename(tmp_path / "helper2.py")  # same contents, another module
    assert code_fingerprint(["Model"], tmp_path) not in (first, second)


def test_a_deployment_without_classes_has_no_code(tmp_path: Path) -> None:
    (tmp_path / "Model.py").write_text(model_source(1.0))
    assert code_fingerprint([], tmp_path) is None
    assert code_fingerprint(["Model"], None) is None
    path = write(tmp_path, "builtin.yaml", example_model("builtin"))
    assert collect([str(path)]).manifests[0].code() is None
    path = write(tmp_path, "user.yaml", deployment("user", unit("m", "MODEL"), {"m": "Model"}))
    (item,) = collect([str(path)]).manifests
    assert item.classes == ("Model",) and item.code() == code_fingerprint(["Model"], tmp_path)


def test_check_code_names_the_file_and_line_of_a_syntax_error(tmp_path: Path) -> None:
    (tmp_path / "Model.py").write_text(model_source(1.0))
    check_code(tmp_path)
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "util.py").write_text("x = 1\ndef f(:\n")
    with pytest.raises(ManifestError, match=r"^d\.yaml: .*pkg/util\.py, line 2: "):
        check_code(tmp_path, source="d.yaml")


# --- the records ----------------------------------------------------------------------------------


def test_changed_code_is_a_change_of_the_record() -> None:
    rec = records()
    doc = deployment("m", unit("m", "MODEL"), {"m": "Model"})
    assert rec.apply("default", "m", doc, "/d", "a")[0] == CREATED
    assert rec.apply("default", "m", doc, "/d", "a")[0] == UNCHANGED
    version = rec.version()
    outcome, stored = rec.apply("default", "m", doc, "/d", "b")
    assert (outcome, stored.generation, stored.code) == (CODE_CHANGED, 2, "b")
    assert rec.version() > version  # the workers will rebuild it
    assert rec.apply("default", "m", doc, "/d", "b")[0] == UNCHANGED
    changed = deployment("m", unit("m", "MODEL", params={"x": 1}), {"m": "Model"})
    assert rec.apply("default", "m", changed, "/d", "c")[0] == CONFIGURED  # the manifest changed too


def test_a_record_stored_before_fingerprints_is_not_changed_by_one() -> None:
    rec = records()
    doc = example_model("old")
    rec.apply("default", "old", doc, None)
    without_code = lambda v: {k: x for k, x in v.items() if k != "code"}  # noqa: E731
    rec.store.update("seldon.deployments", "default/old", without_code)
    assert rec.apply("default", "old", doc, None, "abc")[0] == UNCHANGED


def test_the_watcher_does_not_retry_a_failed_deployment_that_did_not_change() -> None:
    rec = records()
    doc = example_model("f")
    _, stored = rec.apply("default", "f", doc, None)
    rec.set_status(stored, {"state": "Failed", "description": "boom", "predictorStatus": []})
    assert rec.apply("default", "f", doc, None, retry_failed=False)[0] == UNCHANGED
    assert rec.apply("default", "f", doc, None)[0] == CONFIGURED  # `seldon apply` is a retry


# --- the loader runs the new code -------------------------------------------------------------------


def rewrite_keeping_size_and_time(path: Path, old: str, new: str) -> None:
    """An edit the bytecode cache cannot tell from no edit: same size, same modification time."""
    stat = path.stat()
    text = path.read_text()
    assert len(old) == len(new) and old in text
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_an_edited_helper_or_class_is_imported_again_even_in_the_same_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as users run: with __pycache__
    cls, helper = unique("Reloaded"), unique("helper")
    model = tmp_path / f"{cls}.py"
    model.write_text(model_source(0.0, cls, f"import {helper}\n").replace("0.0", f"{helper}.V + 0"))
    (tmp_path / f"{helper}.py").write_text("V = 1\n")
    first = load_user_class(cls, [tmp_path])
    assert first().predict(None) == [[1]]
    assert load_user_class(cls, [tmp_path]) is first  # nothing changed: the same module

    assert list((tmp_path / "__pycache__").iterdir())  # bytecode that would pass for the edited files
    rewrite_keeping_size_and_time(tmp_path / f"{helper}.py", "V = 1", "V = 2")
    second = load_user_class(cls, [tmp_path])
    assert second is not first and second().predict(None) == [[2]]
    assert first().predict(None) == [[1]]  # a graph still holding the old class keeps its code

    rewrite_keeping_size_and_time(model, "V + 0", "V + 5")
    assert load_user_class(cls, [tmp_path])().predict(None) == [[7]]
    sys.modules.pop(helper, None)


def test_a_touch_does_not_run_the_module_again(tmp_path: Path) -> None:
    cls = unique("Touched")
    (tmp_path / f"{cls}.py").write_text(model_source(1.0, cls))
    first = load_user_class(cls, [tmp_path])
    os.utime(tmp_path / f"{cls}.py", (1, 1))
    assert load_user_class(cls, [tmp_path]) is first


def test_apply_through_the_admin_api_says_code_changed_and_serves_it(tmp_path: Path) -> None:
    cls = unique("Admin")
    (tmp_path / f"{cls}.py").write_text(model_source(1.0, cls))
    store = MemoryStore()
    control = ControlPlane(Records(store, OAuthService(store)), DataPlane(), store, poll_interval=0.02)
    doc = deployment("admin", unit("m", "MODEL"), {"m": cls})
    x = SeldonMessage(form=NDARRAY, payload=[[1.0]])

    def apply() -> str:
        return str(asyncio.run(control.apply({"manifest": doc, "base_dir": str(tmp_path)}))["result"])

    def answer() -> Any:
        return asyncio.run(control.plane.predict("admin", None, x)).array().tolist()

    assert apply() == CREATED and answer() == [[1.0]]
    (tmp_path / f"{cls}.py").write_text(model_source(2.0, cls))
    assert apply() == CODE_CHANGED and answer() == [[2.0]]
    assert apply() == UNCHANGED


# --- one pass of the watcher ------------------------------------------------------------------------


def test_a_reload_pass_applies_what_changed_refuses_what_is_broken_and_deletes_what_was_removed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cls = unique("Watched")
    watched = tmp_path / "watched"
    write(watched, "a.yaml", deployment("a", unit("m", "MODEL"), {"m": cls}))
    write(watched, "b.yaml", example_model("b"))
    single = write(tmp_path / "other", "c.yaml", example_model("c"))
    (watched / f"{cls}.py").write_text(model_source(1.0, cls))
    paths = [str(watched), str(single)]
    rec = records()
    started = collect(paths).manifests
    for item in started:
        rec.apply("default", item.name, item.manifest, item.base_dir, item.code())
    reloader = Reloader(paths, rec, started)
    assert reloader.reconcile() == []  # nothing changed since start-up
    assert reloader.targets() == {watched.resolve(), single.parent.resolve()}

    (watched / f"{cls}.py").write_text(model_source(2.0, cls))
    assert reloader.reconcile() == ["seldondeployment/a configured (code changed)"]

    write(watched, "b.yaml", example_model("b", intValue=3))
    assert reloader.reconcile() == ["seldondeployment/b configured"]

    with caplog.at_level(logging.ERROR, logger="seldon_serving.reload"):
        (watched / f"{cls}.py").write_text(model_source(3.0, cls).replace("):", ")", 1))
        (watched / "b.yaml").write_text("kind: SeldonDeployment\nspec: [")
        write(tmp_path / "other", "c.yaml", example_model("c", intValue=4))  # unaffected by the others
        assert reloader.reconcile() == ["seldondeployment/c configured"]
    errors = [r.getMessage() for r in caplog.records]
    assert len(errors) == 2 and all(e.endswith("; not applied, the running version stays") for e in errors)
    assert any(f"{cls}.py, line 2" in e for e in errors) and any("b.yaml" in e for e in errors)
    assert all("\n" not in e for e in errors)
    assert rec.get("default", "a").generation == 2  # type: ignore[union-attr]

    (watched / "b.yaml").unlink()  # a broken manifest removed: its deployment goes
    (watched / f"{cls}.py").write_text(model_source(3.0, cls))
    assert reloader.reconcile() == [
        "seldondeployment/a configured (code changed)",
        "seldondeployment/b deleted",
    ]
    assert rec.get("default", "b") is None

    single.unlink()  # a file named on the command line that vanished deletes nothing
    with caplog.at_level(logging.ERROR, logger="seldon_serving.reload"):
        assert reloader.reconcile() == []
    assert rec.get("default", "c") is not None
