"""`seldon build` and the runtime image: the Dockerfiles are read back with a real Dockerfile
parser (dockerfile-parse), the CLI runs as the installed `seldon` script with a PATH we choose
(no builder, fake builders that record their arguments, or the machine's own), and the wheel
the runtime image's builder stage makes is built from the files that stage copies."""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from dockerfile_parse import DockerfileParser

from seldon_serving.deploy.build import (
    GENERATED_MARK,
    BuildError,
    find_builder,
    model_dockerfile,
    read_s2i_environment,
)
from seldon_serving.deploy.k8s.render import RenderOptions

REPO = Path(__file__).resolve().parents[2]
SELDON = Path(sys.executable).parent / "seldon"
IMAGE = "myorg/mymodel:0.1"
MODEL = """\
class MyModel:
    def predict(self, X, features_names=None):
        return X
"""
S2I_ENVIRONMENT = """\
# written by hand, as for Seldon's s2i builder
MODEL_NAME=MyModel
API_TYPE=REST
SERVICE_TYPE=MODEL
PERSISTENCE=0
"""


# --- helpers ---------------------------------------------------------------------------------


def model_dir(
    tmp_path: Path,
    *,
    requirements: str | None = "numpy>=1.24\n",
    environment: str | None = S2I_ENVIRONMENT,
    files: dict[str, str] | None = None,
) -> Path:
    """A Seldon s2i model directory: MyModel.py, requirements.txt, .s2i/environment."""
    directory = tmp_path / "model"
    (directory / ".s2i").mkdir(parents=True)
    (directory / "MyModel.py").write_text(MODEL)
    if requirements is not None:
        (directory / "requirements.txt").write_text(requirements)
    if environment is not None:
        (directory / ".s2i" / "environment").write_text(environment)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    return directory


def seldon(*args: str | Path, path: list[Path] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed `seldon` script, with PATH set to `path` only (default: an empty PATH, so
    no builder is found); the script names its interpreter, so it needs nothing on PATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("SELDON_RUNTIME_IMAGE", "SELDON_DEBUG")}
    env["PATH"] = os.pathsep.join(str(p) for p in path or [])
    return subprocess.run(
        [str(SELDON), "build", *map(str, args)], capture_output=True, text=True, env=env, timeout=60
    )


def fake_builder(bin_dir: Path, name: str, exit_code: int = 0) -> Path:
    """An executable `name` that records its arguments (one a line) in `<name>.args` and prints a
    progress line, as a builder would."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / name
    script.write_text(
        "#!/bin/sh\n"
        'printf "%s\\n" "$@" > "$0.args"\n'
        f'echo "STEP 1/8: FROM (fake {name})"\n'
        f"exit {exit_code}\n"
    )
    script.chmod(0o755)
    return script


def build_argv(directory: Path, *words: str, dockerfile: str = "Dockerfile", image: str = IMAGE) -> list[str]:
    """The build command for `directory`: `words` (default `docker build`), tag, file, context."""
    return [*(words or ("docker", "build")), "-t", image, "-f", str(directory / dockerfile), str(directory)]


def recorded_args(script: Path) -> list[str]:
    return Path(f"{script}.args").read_text().splitlines()


def parse(path: Path) -> DockerfileParser:
    # From its bytes: given a path, the parser takes any name but `Dockerfile` for a directory.
    return DockerfileParser(fileobj=io.BytesIO(path.read_bytes()))


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, value) of a Dockerfile, comments left out."""
    parser = parse(path)
    return [(i["instruction"], i["value"]) for i in parser.structure if i["instruction"] != "COMMENT"]


def stages(path: Path) -> list[list[tuple[str, str]]]:
    """The instructions of each build stage (each starts with its FROM)."""
    out: list[list[tuple[str, str]]] = []
    for instruction in instructions(path):
        if instruction[0] == "FROM":
            out.append([])
        if out:
            out[-1].append(instruction)
    return out


def values(stage: list[tuple[str, str]], name: str) -> list[str]:
    return [value for instruction, value in stage if instruction == name]


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The failure's stderr, checked to be one `error:` sentence and no traceback."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# --- the model image's Dockerfile --------------------------------------------------------------


def test_build_writes_the_s2i_dockerfile_and_prints_the_command_without_a_builder(tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    result = seldon(directory, "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    dockerfile = directory / "Dockerfile"
    # stdout is the command, and only it: what the user copies and runs.
    assert shlex.split(result.stdout) == build_argv(directory)
    assert "no docker, podman or buildah on PATH" in result.stderr

    assert dockerfile.read_text().startswith(GENERATED_MARK)
    steps = instructions(dockerfile)
    assert steps[1][0] == "ENV"  # its pairs are checked below
    assert [step for step in steps if step[0] != "ENV"] == [
        ("FROM", RenderOptions().runtime_image),
        ("COPY", "--chown=8888:8888 . /microservice"),
        ("WORKDIR", "/microservice"),
        ("USER", "root"),
        ("RUN", "pip install --no-cache-dir -r requirements.txt"),
        ("USER", "8888"),
        ("EXPOSE", "9000 5000 6000"),
        ("CMD", '["seldon-core-microservice", "MyModel", "--service-type", "MODEL"]'),
    ]
    parser = parse(dockerfile)
    assert parser.envs == dict(MODEL_NAME="MyModel", API_TYPE="REST", SERVICE_TYPE="MODEL", PERSISTENCE="0")
    assert json.loads(parser.cmd) == ["seldon-core-microservice", "MyModel", "--service-type", "MODEL"]


def test_no_requirements_means_no_install_and_no_root(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, requirements=None)
    result = seldon(directory, "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    steps = instructions(directory / "Dockerfile")
    assert not [v for i, v in steps if i == "RUN"]
    assert values(steps, "USER") == ["8888"]


def test_options_win_over_the_s2i_environment(tmp_path: Path) -> None:
    router = "class Router:\n    def route(self, X, names):\n        return 0\n"
    directory = model_dir(tmp_path, files={"Router.py": router})
    result = seldon(
        directory,
        "--image",
        "localhost:5000/team/router:1",
        "--model-name",
        "Router",
        "--service-type",
        "router",
        "--base-image",
        "registry.example.com:5000/seldon-serving:0.1.0",
    )
    assert result.returncode == 0, result.stderr
    parser = parse(directory / "Dockerfile")
    assert parser.baseimage == "registry.example.com:5000/seldon-serving:0.1.0"
    # ENV and CMD agree, whatever .s2i/environment said.
    assert parser.envs["MODEL_NAME"] == "Router" and parser.envs["SERVICE_TYPE"] == "ROUTER"
    assert json.loads(parser.cmd) == ["seldon-core-microservice", "Router", "--service-type", "ROUTER"]
    assert shlex.split(result.stdout)[3] == "localhost:5000/team/router:1"


def test_a_dotted_class_and_the_defaults_without_s2i_environment(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, environment=None, requirements=None)
    (directory / "pkg").mkdir()
    (directory / "pkg" / "__init__.py").write_text("")
    (directory / "pkg" / "models.py").write_text("class Scorer:\n    pass\n")
    result = seldon(directory, "--image", IMAGE, "--model-name", "pkg.models.Scorer")
    assert result.returncode == 0, result.stderr
    parser = parse(directory / "Dockerfile")
    assert parser.envs == {"MODEL_NAME": "pkg.models.Scorer", "SERVICE_TYPE": "MODEL"}
    assert json.loads(parser.cmd)[:2] == ["seldon-core-microservice", "pkg.models.Scorer"]


def test_a_dotted_class_from_an_installed_package_is_left_to_the_image(tmp_path: Path) -> None:
    # Not in MODEL_DIR and not importable here: requirements.txt installs it in the image.
    directory = model_dir(tmp_path, requirements="acme-models==2.0\n")
    result = seldon(directory, "--image", IMAGE, "--model-name", "acme_models.serving.Scorer")
    assert result.returncode == 0, result.stderr
    assert f"note: MODEL_NAME acme_models.serving.Scorer is not in {directory}" in result.stderr
    assert parse(directory / "Dockerfile").envs["MODEL_NAME"] == "acme_models.serving.Scorer"


def test_seldon_core_in_requirements_is_left_out_of_the_install(tmp_path: Path) -> None:
    requirements = (
        "numpy>=1.24\nseldon-core==1.18.2\n  Seldon_Core[tensorflow]>=1.0 ; python_version>'3'\n"
        "seldon-core-tempo\n"
    )
    directory = model_dir(tmp_path, requirements=requirements)
    result = seldon(directory, "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert "seldon-core==1.18.2" in result.stderr and "is not installed" in result.stderr
    run = values(instructions(directory / "Dockerfile"), "RUN")
    assert len(run) == 1 and "pip install --no-cache-dir -r" in run[0]

    # The RUN line itself, run by /bin/sh in a copy of the model directory with a `pip` that
    # records the requirements file it is given: seldon-core is gone, the rest is installed.
    fake_bin = tmp_path / "fake-bin"
    fake_bin.mkdir()
    (fake_bin / "pip").write_text('#!/bin/sh\nfor last; do :; done\ncp "$last" "$0.got"\n')
    (fake_bin / "pip").chmod(0o755)
    workdir = tmp_path / "microservice"
    shutil.copytree(directory, workdir)
    env = {"PATH": os.pathsep.join([str(fake_bin), "/usr/bin", "/bin"])}
    subprocess.run(["/bin/sh", "-c", run[0]], cwd=workdir, env=env, check=True, timeout=30)
    installed = (fake_bin / "pip.got").read_text().splitlines()
    assert installed == ["numpy>=1.24", "seldon-core-tempo"]
    assert sorted(p.name for p in workdir.iterdir()) == sorted(p.name for p in directory.iterdir())


def test_requirements_of_only_seldon_core_install_nothing(tmp_path: Path) -> None:
    directory = model_dir(tmp_path, requirements="# the wrapper\nseldon-core\n")
    assert seldon(directory, "--image", IMAGE).returncode == 0
    steps = instructions(directory / "Dockerfile")
    assert not values(steps, "RUN") and values(steps, "USER") == ["8888"]


def test_a_dockerfile_of_the_users_own_is_never_overwritten(tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    own = 'FROM python:3.11-slim\nCMD ["python", "MyModel.py"]\n'
    (directory / "Dockerfile").write_text(own)
    for _ in range(2):  # the second run replaces our own Dockerfile.seldon
        result = seldon(directory, "--image", IMAGE)
        assert result.returncode == 0, result.stderr
        assert (directory / "Dockerfile").read_text() == own
        assert shlex.split(result.stdout)[5] == str(directory / "Dockerfile.seldon")
        assert parse(directory / "Dockerfile.seldon").baseimage == RenderOptions().runtime_image

    (directory / "Dockerfile.seldon").write_text("FROM scratch\n")
    line = one_error_line(seldon(directory, "--image", IMAGE))
    assert "Dockerfile and Dockerfile.seldon of its own" in line
    assert (directory / "Dockerfile.seldon").read_text() == "FROM scratch\n"


def test_a_generated_dockerfile_is_rewritten_in_place(tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    assert seldon(directory, "--image", IMAGE).returncode == 0
    assert seldon(directory, "--image", IMAGE, "--service-type", "TRANSFORMER").returncode == 0
    assert not (directory / "Dockerfile.seldon").exists()
    assert parse(directory / "Dockerfile").envs["SERVICE_TYPE"] == "TRANSFORMER"


MISTAKES = {
    "missing dir": "error: MODEL_DIR {dir}-missing does not exist",
    "no class": "give --model-name CLASS, or MODEL_NAME=CLASS in {dir}/.s2i/environment",
    "bad --service-type": "error: --service-type is 'SCORER', not one of MODEL, ROUTER, TRANSFORMER",
    "bad SERVICE_TYPE": "error: SERVICE_TYPE in {dir}/.s2i/environment is 'SCORER', not one of MODEL",
    "no class file": "error: MODEL_NAME Missing: no module named 'Missing' (looked in {dir})",
    "class not in file": "error: MODEL_NAME MyModel: module 'MyModel' ({dir}/MyModel.py) has no class",
    "bad env line": "error: {dir}/.s2i/environment line 2: 'MODEL NAME MyModel' is not a KEY=VALUE line",
    "bad image": "error: --image 'MyOrg/My Model' is not a valid image name",
}


@pytest.mark.parametrize("case", sorted(MISTAKES))
def test_mistakes_are_one_sentence_and_a_failure(tmp_path: Path, case: str) -> None:
    directory = model_dir(tmp_path)
    args: list[str | Path] = [directory, "--image", IMAGE]
    if case == "missing dir":
        args[0] = f"{directory}-missing"
    elif case == "no class":
        (directory / ".s2i" / "environment").write_text("SERVICE_TYPE=MODEL\n")
    elif case == "bad --service-type":
        args += ["--service-type", "scorer"]
    elif case == "bad SERVICE_TYPE":
        (directory / ".s2i" / "environment").write_text("MODEL_NAME=MyModel\nSERVICE_TYPE=SCORER\n")
    elif case == "no class file":
        args += ["--model-name", "Missing"]
    elif case == "class not in file":
        (directory / "MyModel.py").write_text("class Other:\n    pass\n")
    elif case == "bad env line":
        (directory / ".s2i" / "environment").write_text("# s2i\nMODEL NAME MyModel\n")
    elif case == "bad image":
        args[2] = "MyOrg/My Model"
    result = seldon(*args)
    line = one_error_line(result)
    expected = MISTAKES[case].format(dir=directory)
    assert line.startswith(expected) if expected.startswith("error: ") else expected in line
    assert result.returncode == 1
    assert result.stdout == ""
    assert not (directory / "Dockerfile").exists()


# --- the builder ------------------------------------------------------------------------------


def test_the_builder_on_path_builds_with_its_output_streamed(tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    bin_dir = tmp_path / "bin"
    docker = fake_builder(bin_dir, "docker")
    fake_builder(bin_dir, "podman")
    result = seldon(directory, "--image", IMAGE, path=[bin_dir])
    assert result.returncode == 0, result.stderr
    # The builder's own output reaches the user as it runs, then our line.
    assert result.stdout.splitlines() == ["STEP 1/8: FROM (fake docker)", f"built {IMAGE}"]
    assert recorded_args(docker) == build_argv(directory)[1:]
    assert not Path(f"{bin_dir / 'podman'}.args").exists()
    assert f"running: docker build -t {IMAGE}" in result.stderr


def test_a_failed_build_is_one_sentence_and_keeps_the_dockerfile(tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    bin_dir = tmp_path / "bin"
    fake_builder(bin_dir, "podman", exit_code=3)
    result = seldon(directory, "--image", IMAGE, path=[bin_dir])
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    command = shlex.join(build_argv(directory, "podman", "build"))
    kept = f"{directory}/Dockerfile is kept"
    assert last == f"error: `{command}` failed with exit code 3 (its output is above; {kept})"
    assert (directory / "Dockerfile").is_file()


def test_dockerfile_only_runs_no_builder(tmp_path: Path) -> None:
    directory = model_dir(tmp_path)
    bin_dir = tmp_path / "bin"
    docker = fake_builder(bin_dir, "docker")
    result = seldon(directory, "--image", IMAGE, "--dockerfile-only", path=[bin_dir])
    assert result.returncode == 0, result.stderr
    assert shlex.split(result.stdout) == build_argv(directory)
    assert not Path(f"{docker}.args").exists()


def test_find_builder_prefers_docker_then_podman_then_buildah(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found: list[tuple[str, list[str]] | None] = []
    for names in (["docker", "podman", "buildah"], ["podman", "buildah"], ["buildah"], []):
        bin_dir = tmp_path / "-".join(names or ["none"])
        bin_dir.mkdir()
        for name in names:
            fake_builder(bin_dir, name)
        monkeypatch.setenv("PATH", str(bin_dir))
        found.append(find_builder())
    assert found == [
        ("docker", ["docker", "build"]),
        ("podman", ["podman", "build"]),
        ("buildah", ["buildah", "bud"]),
        None,
    ]


def _working_builder() -> list[str] | None:
    """The build command's first words of a builder on this machine's PATH that can build now
    (a docker CLI without a reachable daemon cannot)."""
    found = find_builder()
    if found is None:
        return None
    probe = {"docker": ["docker", "info"], "podman": ["podman", "info"], "buildah": ["buildah", "images"]}
    try:
        ok = subprocess.run(probe[found[0]], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return found[1] if ok else None


def _image_config(builder: str, image: str) -> dict[str, Any]:
    if builder == "buildah":
        command = ["buildah", "inspect", "--type", "image", "--format", "{{json .OCIv1.Config}}", image]
    else:
        command = [builder, "image", "inspect", "--format", "{{json .Config}}", image]
    output = subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout
    config: dict[str, Any] = json.loads(output)
    return config


@pytest.mark.slow
def test_the_model_image_builds_where_a_builder_works(tmp_path: Path) -> None:
    """With a working docker, podman or buildah, the image builds (on python:3.11-slim, so that
    our runtime image need not be built first) and runs as 8888 the command we wrote.  Without
    one, what `seldon build` does instead is checked: the builder on PATH fails in one sentence,
    or no builder is on PATH and the command is printed."""
    directory = model_dir(tmp_path, requirements="# nothing to install\n")
    machine_path = [Path(p) for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    found = find_builder()
    working = _working_builder()
    image = f"seldon-serving-test/model:{uuid.uuid4().hex[:12]}"
    result = seldon(directory, "--image", image, "--base-image", "python:3.11-slim", path=machine_path)
    if working is not None:
        assert found is not None
        try:
            assert result.returncode == 0, result.stderr
            config = _image_config(found[0], image)
            assert config["User"] == "8888"
            assert config["Cmd"] == ["seldon-core-microservice", "MyModel", "--service-type", "MODEL"]
            assert config["WorkingDir"] == "/microservice"
            assert "MODEL_NAME=MyModel" in config["Env"]
        finally:
            remove = ["buildah", "rmi", image] if found[0] == "buildah" else [found[0], "rmi", "-f", image]
            subprocess.run(remove, capture_output=True, timeout=120)
    elif found is not None:
        command = shlex.join(build_argv(directory, *found[1], image=image))
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert result.stderr.strip().splitlines()[-1].startswith(f"error: `{command}` failed with exit code ")
    else:
        assert result.returncode == 0, result.stderr
        assert shlex.split(result.stdout)[:4] == ["docker", "build", "-t", image]
    assert (directory / "Dockerfile").is_file()


# --- pure functions ---------------------------------------------------------------------------


def test_read_s2i_environment_takes_comments_quotes_and_export(tmp_path: Path) -> None:
    directory = tmp_path / "m"
    assert read_s2i_environment(directory) == {}
    (directory / ".s2i").mkdir(parents=True)
    (directory / ".s2i" / "environment").write_text(
        "# Seldon s2i\n\nMODEL_NAME = 'MyModel'\nexport SERVICE_TYPE=\"ROUTER\"\n"
        "PERSISTENCE=0\nFLAGS=a=b c\nEMPTY=\n  # indented comment\n"
    )
    assert read_s2i_environment(directory) == {
        "MODEL_NAME": "MyModel",
        "SERVICE_TYPE": "ROUTER",
        "PERSISTENCE": "0",
        "FLAGS": "a=b c",
        "EMPTY": "",
    }
    (directory / ".s2i" / "environment").write_text("1BAD=x\n")
    with pytest.raises(BuildError, match=r"line 1: '1BAD=x' is not a KEY=VALUE line"):
        read_s2i_environment(directory)


def test_env_values_are_quoted_for_the_dockerfile(tmp_path: Path) -> None:
    text = model_dockerfile(
        "base:1", "MyModel", "MODEL", False, {"GREETING": "hello world", "ODD": 'say "hi" to $HOME \\o/'}
    )
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    parser = parse(path)
    assert parser.envs["GREETING"] == "hello world"
    # Inside double quotes Docker takes \\, \" and \$ as the escaped character: no expansion.
    assert 'ODD="say \\"hi\\" to \\$HOME \\\\o/"' in text
    assert parser.envs["MODEL_NAME"] == "MyModel" and parser.envs["SERVICE_TYPE"] == "MODEL"


# --- the runtime image ------------------------------------------------------------------------

COMPILERS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|apt-get|apt|apk|yum|dnf)\b")


def test_the_runtime_dockerfile() -> None:
    builder, final = stages(REPO / "Dockerfile")
    assert builder[0] == ("FROM", "python:3.11-slim AS builder")
    assert final[0] == ("FROM", "python:3.11-slim")

    # The builder stage makes the wheels of the project and its extras, and installs them.
    # By default every model server's framework is in (rendered SKLEARN_SERVER nodes run it).
    run = " ".join(values(builder, "RUN"))
    extras = [v for v in values(builder, "ARG") if v.startswith("EXTRAS=")]
    assert extras and set(extras[0].removeprefix("EXTRAS=").split(",")) >= {
        "k8s", "redis", "sklearn", "xgboost", "lightgbm", "mlflow", "s3", "gcs"
    }
    assert 'pip wheel --no-cache-dir --wheel-dir /wheels ".[${EXTRAS}]"' in run
    install = r'pip install --no-cache-dir --no-index --find-links /wheels --prefix /install\s+'
    install += r'"seldon-serving\[\$\{EXTRAS\}\]"'
    assert re.search(install, run)
    assert values(final, "COPY") == ["--from=builder /install /usr/local"]

    # Small and non-root: no package manager or compiler runs in the final stage; uid 8888 is
    # the named user `seldon`, last USER of the image, with its own home as working directory.
    final_run = " ".join(values(final, "RUN"))
    assert not COMPILERS.search(final_run), final_run
    assert re.search(r"groupadd --gid 8888 seldon\b", final_run)
    user = r"useradd [^&]*--uid 8888 --gid 8888 [^&]*--home-dir /home/seldon [^&]*\bseldon\b"
    assert re.search(user, final_run)
    assert "install -d -o 8888 -g 8888 /microservice" in final_run
    assert values(final, "USER") == ["8888"]
    assert [i for i, _ in final].index("USER") > [i for i, _ in final].index("RUN")
    assert values(final, "WORKDIR") == ["/home/seldon"]

    parser = parse(REPO / "Dockerfile")
    assert parser.envs["PYTHONUNBUFFERED"] == "1" and parser.envs["HOME"] == "/home/seldon"
    assert set(values(final, "EXPOSE")[0].split()) >= {"9000", "5000", "8000", "5001", "6000"}
    # `docker run IMAGE` prints help; `docker run IMAGE seldon engine` and a pod's `command:`
    # replace the CMD (there is no ENTRYPOINT to get in the way).
    assert not [i for i, _ in builder + final if i == "ENTRYPOINT"]
    assert json.loads(parser.cmd) == ["seldon", "--help"]

    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert parser.labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert parser.labels["org.opencontainers.image.version"] == version
    assert parser.labels["org.opencontainers.image.title"] == "Seldon Serving"


def _dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's .dockerignore rule: the last pattern matching the path or one of its parent
    directories decides; `!` lets back in; `*` and `?` stay within one path element, `**` spans any."""

    def regex(pattern: str) -> re.Pattern[str]:
        out, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                out, i = out + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                out, i = out + ".*", i + 2
            elif pattern[i] == "*":
                out, i = out + "[^/]*", i + 1
            elif pattern[i] == "?":
                out, i = out + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                out, i = out + pattern[i : end + 1], end + 1
            else:
                out, i = out + re.escape(pattern[i]), i + 1
        return re.compile(out + r"\Z")

    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    excluded = False
    for raw in patterns:
        negate = raw.startswith("!")
        compiled = regex(raw.lstrip("!").strip("/"))
        if any(compiled.match(c) for c in candidates):
            excluded = not negate
    return excluded


def _dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def test_the_dockerignore_sends_only_what_the_wheel_is_made_of() -> None:
    patterns = _dockerignore()
    sent = [
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "src/seldon_serving/__init__.py",
        "src/seldon_serving/py.typed",
        "src/seldon_serving/protocol/proto/prediction.proto",
    ]
    kept_out = [
        ".venv/bin/python",
        ".venv-compat/bin/python",
        ".git/HEAD",
        "tests/deploy/test_build.py",
        "bench/out/results.json",
        "examples/manifests/mymodel.yaml",
        "src/seldon_serving/__pycache__/cli.cpython-311.pyc",
        "src/seldon_serving.egg-info/PKG-INFO",
        ".mypy_cache/3.11/x.json",
        "state/deployments.sqlite",
    ]
    assert [p for p in sent if _dockerignore_excludes(patterns, p)] == []
    assert [p for p in kept_out if not _dockerignore_excludes(patterns, p)] == []
    # Every source the builder stage copies is in the context.
    builder = stages(REPO / "Dockerfile")[0]
    sources = [word for value in values(builder, "COPY") for word in value.split()[:-1]]
    assert sources and not [s for s in sources if _dockerignore_excludes(patterns, s)]


def test_the_builder_stages_wheel_has_both_commands(tmp_path: Path) -> None:
    """The wheel, built as the builder stage builds it: from exactly the files its COPY lines
    take (less what .dockerignore keeps out of the context)."""
    patterns = _dockerignore()
    context = tmp_path / "context"
    for value in values(stages(REPO / "Dockerfile")[0], "COPY"):
        *sources, _destination = value.split()
        for source in sources:
            for path in [REPO / source, *sorted((REPO / source).rglob("*"))]:
                relative = path.relative_to(REPO).as_posix()
                if path.is_file() and not _dockerignore_excludes(patterns, relative):
                    (context / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, context / relative)
    wheels = tmp_path / "wheels"
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir"]
    subprocess.run(
        [*pip_wheel, "-w", str(wheels), str(context)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("seldon_serving-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        info = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        entry_points = archive.read(info).decode()
        metadata = archive.read(info.replace("entry_points.txt", "METADATA")).decode()
    assert "seldon = seldon_serving.cli.main:main" in entry_points
    assert "seldon-core-microservice = seldon_serving.cli.compat:seldon_core_microservice" in entry_points
    assert "Provides-Extra: k8s" in metadata and "Provides-Extra: redis" in metadata
    assert "seldon_serving/protocol/proto/prediction.proto" in names
    assert "seldon_serving/deploy/build.py" in names
