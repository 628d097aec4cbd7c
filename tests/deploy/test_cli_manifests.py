"""The offline manifest commands: validate, convert, generate (what `ks generate` users type)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from seldon_serving.cli.main import cli
from tests.deploy.gateway import EXAMPLES, deployment, example_model, unit, write


def run(*args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_validate_says_ok_per_deployment_and_skips_other_kinds(tmp_path: Path) -> None:
    code, out, _ = run("validate", str(EXAMPLES))
    assert code == 0
    assert sorted(line.rsplit("/", 1)[-1] for line in out.splitlines()) == [
        "myabtest",
        "mymab",
        "mymodel",
        "myout",
    ]
    generated = run("generate", "serve-simple", "withpvc", "--image", "x/y:1", "--pvc-name", "claim")[1]
    path = tmp_path / "pvc.yaml"
    path.write_text(generated)
    code, out, _ = run("validate", str(path))
    assert code == 0
    assert out.splitlines() == [
        f"ok: {path}: seldondeployment/withpvc",
        f"{path}: PersistentVolumeClaim claim: not a SeldonDeployment, skipped",
    ]


def test_validate_names_file_and_field_in_one_sentence(tmp_path: Path) -> None:
    doc = example_model("bad")
    doc["spec"]["predictors"][0]["graph"]["children"] = [{"name": "ghost", "type": "MODEL"}]
    path = write(tmp_path, "bad.yaml", doc)
    code, out, err = run("validate", str(path), str(EXAMPLES / "mymodel.yaml"))
    assert code == 1
    assert out.strip().endswith("seldondeployment/mymodel")  # the good file is still checked
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {path}: spec.predictors[0].graph.children[0]")
    assert "ghost" in lines[0]


def test_validate_checks_the_ab_statistics_annotations_as_apply_does(tmp_path: Path) -> None:
    doc = example_model("exp")
    doc["metadata"]["annotations"] = {"seldon.io/experiment-alpha": "5%"}
    path = write(tmp_path, "exp.yaml", doc)
    code, _, err = run("validate", str(path))
    assert code == 1
    problem = "annotation seldon.io/experiment-alpha must be a number, got '5%'"
    assert err.strip() == f"error: {path}: metadata.annotations: {problem}"


def test_convert_between_v1alpha1_and_v1alpha2() -> None:
    code, out, _ = run("convert", str(EXAMPLES / "v1alpha1" / "mymab.yaml"), "--to", "v1alpha2")
    assert code == 0
    items = [i for doc in yaml.safe_load_all(out) for i in doc.get("items", [doc])]
    sdep = next(i for i in items if i["kind"] == "SeldonDeployment")
    assert sdep["apiVersion"] == "machinelearning.seldon.io/v1alpha2"
    predictor = sdep["spec"]["predictors"][0]
    assert "componentSpec" not in predictor and len(predictor["componentSpecs"]) == 1

    code, out, _ = run("convert", str(EXAMPLES / "mymodel.yaml"), "--to", "v1alpha1", "-o", "json")
    assert code == 0 and '"componentSpec":' in out and '"componentSpecs"' not in out


def test_generate_matches_the_shipped_prototype_manifests() -> None:
    code, out, _ = run(
        "generate", "seldon-mab-v1alpha2", "mymab", "--imageA", "seldonio/mock_classifier:1.0",
        "--imageB", "seldonio/mock_classifier:1.0",
    )  # fmt: skip
    assert code == 0
    assert yaml.safe_load(out) == yaml.safe_load((EXAMPLES / "mymab.yaml").read_text())
    code, out, _ = run(
        "generate", "abtest", "ab", "--seldon-version", "0.1.x", "--image-a", "a:1", "--image-b", "b:1"
    )
    assert code == 0 and "machinelearning.seldon.io/v1alpha1" in out


def test_generate_refuses_missing_images_in_one_sentence() -> None:
    code, _, err = run("generate", "abtest", "ab", "--imageA", "a:1")
    assert code == 1
    assert err.strip() == "error: --imageB is required for abtest"


def test_validate_finds_a_missing_class_before_apply_would_fail(tmp_path: Path) -> None:
    doc = deployment("mine", unit("model", "MODEL"), {"model": "MyModel"})
    path = write(tmp_path, "mine.yaml", doc)
    code, _, err = run("validate", str(path))
    assert code == 1
    assert err.strip() == (
        f"error: {path}: spec.predictors[0].graph: MODEL_NAME MyModel: "
        f"no module named 'MyModel' (looked in {tmp_path.resolve()})"
    )
    (tmp_path / "MyModel.py").write_text("class Other:\n    pass\n")
    code, _, err = run("validate", str(path))
    assert code == 1 and "has no class 'MyModel'" in err
    # the file is read, not run: a module that would fail at import time still validates
    (tmp_path / "MyModel.py").write_text("import not_installed_anywhere\nclass MyModel:\n    pass\n")
    code, out, _ = run("validate", str(path))
    assert code == 0 and out.strip() == f"ok: {path}: seldondeployment/mine"


def test_a_bug_is_one_line_and_debug_shows_where(monkeypatch: pytest.MonkeyPatch) -> None:
    import seldon_serving.spec as spec

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something of ours went wrong")

    monkeypatch.setattr(spec, "generate", broken)
    code, _, err = run("generate", "abtest", "ab", "--imageA", "a:1", "--imageB", "b:1")
    assert code == 70
    assert err.strip() == (
        "error: unexpected RuntimeError: something of ours went wrong (a bug in Seldon Serving; "
        "run again with --debug to see where it happened)"
    )
    code, _, err = run("--debug", "generate", "abtest", "ab", "--imageA", "a:1", "--imageB", "b:1")
    assert code == 70
    assert "Traceback (most recent call last)" in err and "RuntimeError: something of ours went wrong" in err
    assert "in broken" in err
