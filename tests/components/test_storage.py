"""modelUri: every scheme a manifest may use, resolved to the local model a server loads, and
each way it can be wrong answered with one sentence naming the URI.

s3:// runs against moto's S3 server in a process of its own; gs:// against gcp-storage-emulator.
Both are real HTTP servers on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from seldon_serving.components.storage import SUPPORTED, ModelUriError, resolve_model_uri
from tests.helpers import ROOT, wait_until
from tests.s3_server import S3_VARIABLES, GcsServer, S3Server, isolated_aws_env

MODEL = {"model.joblib": b"\x80\x04joblib-bytes", "sub/metadata.yaml": b"name: clf\n"}


def tree(directory: Path) -> dict[str, bytes]:
    """Every file under `directory` (relative name: content), markers of ours left out."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.name.startswith(".")
    }


def write_tree(directory: Path, files: dict[str, bytes]) -> Path:
    for name, body in files.items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_bytes(body)
    return directory


def refused(uri: str, **options: object) -> str:
    with pytest.raises(ModelUriError) as caught:
        resolve_model_uri(uri, **options)  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message and "Traceback" not in message
    return message


# --- local paths, file://, pvc:// -------------------------------------------------------------


def test_a_local_directory_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_tree(tmp_path / "models" / "clf", MODEL)
    monkeypatch.chdir(tmp_path)
    path = resolve_model_uri("models/clf")
    assert path == tmp_path / "models" / "clf" and path.is_absolute()
    assert tree(path) == MODEL
    # A process that starts elsewhere (a process node, a worker) still finds it.
    monkeypatch.chdir("/")
    assert tree(path) == MODEL


def test_a_local_file(tmp_path: Path) -> None:
    write_tree(tmp_path, MODEL)
    assert resolve_model_uri(str(tmp_path / "model.joblib")) == tmp_path / "model.joblib"


def test_file_uris_absolute_and_relative(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path / "clf", MODEL)
    assert resolve_model_uri(f"file://{tmp_path}/clf") == tmp_path / "clf"
    assert resolve_model_uri(f"file://localhost{tmp_path}/clf") == tmp_path / "clf"
    monkeypatch.chdir(tmp_path)
    assert resolve_model_uri("file://clf") == tmp_path / "clf"  # as Seldon's storage reads it


def test_a_path_that_does_not_exist(tmp_path: Path) -> None:
    message = refused(f"file://{tmp_path}/nope")
    assert message == f"modelUri 'file://{tmp_path}/nope': {tmp_path}/nope does not exist"
    assert refused(str(tmp_path / "typo" / "model.joblib")).endswith("model.joblib does not exist")


def _without_root_rights(code: str) -> subprocess.CompletedProcess[str]:
    """Run `code` in a process that file modes bind: root reads every file whatever its mode,
    so as root the process drops the capabilities that let it (and only those)."""
    drop = "-dac_override,-dac_read_search"
    prefix = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}"] if os.geteuid() == 0 else []
    return subprocess.run(
        [*prefix, sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/"
    )


def test_an_unreadable_file_and_a_directory_holding_one(tmp_path: Path) -> None:
    clf = write_tree(tmp_path / "clf", MODEL)
    clf.chmod(0o755)
    (clf / "model.joblib").chmod(0o000)
    code = textwrap.dedent(f"""
        from seldon_serving.components.storage import ModelUriError, resolve_model_uri
        for uri in ({str(clf / "model.joblib")!r}, "file://{clf}"):
            try:
                resolve_model_uri(uri)
                print("resolved", uri)
            except ModelUriError as error:
                print(error)
        print(resolve_model_uri({str(clf / "sub")!r}))
    """)
    result = _without_root_rights(code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"modelUri '{clf}/model.joblib': {clf}/model.joblib cannot be read (permission denied)",
        f"modelUri 'file://{clf}': {clf}/model.joblib cannot be read (permission denied)",
        f"{clf}/sub",  # the readable part is still served
    ]


def test_an_unreadable_directory(tmp_path: Path) -> None:
    clf = write_tree(tmp_path / "clf", MODEL)
    clf.chmod(0o000)
    try:
        result = _without_root_rights(
            "from seldon_serving.components.storage import ModelUriError, resolve_model_uri\n"
            f"try:\n    resolve_model_uri({str(clf)!r})\nexcept ModelUriError as error:\n    print(error)\n"
        )
    finally:
        clf.chmod(0o755)
    assert result.stdout.strip() == f"modelUri '{clf}': {clf} cannot be read (permission denied)", (
        result.stderr
    )


def test_pvc_uris_under_the_pvc_root(tmp_path: Path) -> None:
    write_tree(tmp_path / "claims" / "models-pvc" / "iris", MODEL)
    path = resolve_model_uri("pvc://models-pvc/iris", pvc_root=tmp_path / "claims")
    assert path == tmp_path / "claims" / "models-pvc" / "iris"
    assert tree(path) == MODEL
    # The claim's root is a model too (Seldon's pvc://<claim> with no path).
    write_tree(tmp_path / "claims" / "whole", MODEL)
    assert resolve_model_uri("pvc://whole", pvc_root=tmp_path / "claims") == tmp_path / "claims" / "whole"


def test_pvc_errors(tmp_path: Path) -> None:
    assert refused("pvc://models-pvc/iris") == (
        "modelUri 'pvc://models-pvc/iris' is on a PersistentVolumeClaim: give --pvc-root, the directory "
        "where claims are mounted (the model is then read from <pvc-root>/models-pvc/iris)"
    )
    assert refused("pvc://models-pvc/iris", pvc_root=tmp_path) == (
        f"modelUri 'pvc://models-pvc/iris': {tmp_path}/models-pvc/iris does not exist"
    )
    assert "leaves its claim" in refused("pvc://models-pvc/../../etc", pvc_root=tmp_path)
    assert "names no claim" in refused("pvc:///iris", pvc_root=tmp_path)


@pytest.mark.parametrize(
    "uri", ["http://example.com/model.joblib", "hdfs://namenode/models/iris", "ftp://x/y"]
)
def test_unsupported_schemes_list_the_supported_ones(uri: str) -> None:
    scheme = uri.split("://")[0]
    assert refused(uri) == f"modelUri {uri!r} has the unsupported scheme {scheme}://; give {SUPPORTED}"


def test_an_empty_uri() -> None:
    assert refused("  ") == f"the modelUri is empty; give {SUPPORTED}"


# --- s3:// ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        server.put_tree("models", {f"iris/{name}": body for name, body in MODEL.items()})
        server.put_tree("models", {"single/model.bst": b"xgboost-bytes", "other/model.txt": b"lightgbm"})
        yield server
    finally:
        server.stop()


def _clean_env(monkeypatch: pytest.MonkeyPatch, settings: dict[str, str]) -> None:
    for name in S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_env(s3: S3Server, monkeypatch: pytest.MonkeyPatch) -> S3Server:
    """This process set up as a user of `s3` would set it: credentials and AWS_ENDPOINT_URL."""
    _clean_env(monkeypatch, s3.env())
    return s3


def test_an_s3_prefix_is_downloaded_as_a_directory(s3_env: S3Server, tmp_path: Path) -> None:
    path = resolve_model_uri("s3://models/iris", cache_dir=tmp_path / "cache")
    assert path.parent == tmp_path / "cache" and path.is_dir()
    assert tree(path) == MODEL
    # The same object written Seldon's rclone way, or with a trailing slash, is the same cache entry.
    assert resolve_model_uri("s3:models/iris/", cache_dir=tmp_path / "cache") == path
    assert sorted(s3_env.object_downloads("models")).count("iris/model.joblib") == 1


def test_an_s3_object_is_downloaded_as_that_file(s3_env: S3Server, tmp_path: Path) -> None:
    path = resolve_model_uri("s3://models/single/model.bst", cache_dir=tmp_path)
    assert path.name == "model.bst" and path.read_bytes() == b"xgboost-bytes"
    assert [p.name for p in path.parent.iterdir() if not p.name.startswith(".")] == ["model.bst"]


def test_the_default_cache_is_under_the_users_cache_directory(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = resolve_model_uri("s3://models/other")
    assert path.parent == tmp_path / ".cache" / "seldon-serving" / "models"
    assert tree(path) == {"model.txt": b"lightgbm"}


def test_a_missing_bucket_and_a_missing_key(s3_env: S3Server, tmp_path: Path) -> None:
    assert refused("s3://no-such-bucket/iris", cache_dir=tmp_path) == (
        "modelUri 's3://no-such-bucket/iris': the bucket 'no-such-bucket' does not exist "
        f"(at {s3_env.endpoint})"
    )
    assert refused("s3://models/irsi", cache_dir=tmp_path) == (
        "modelUri 's3://models/irsi': the bucket 'models' holds no object or prefix 'irsi'"
    )
    # Nothing half-made is left to be taken for a model later.
    assert [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []
    # And the store still serves the URIs that are right.
    assert tree(resolve_model_uri("s3://models/iris", cache_dir=tmp_path)) == MODEL


def test_no_credentials(s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch, {**isolated_aws_env(), "AWS_ENDPOINT_URL": s3.endpoint})
    assert refused("s3://models/iris", cache_dir=tmp_path) == (
        "modelUri 's3://models/iris' cannot be downloaded: no S3 credentials were found; set "
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_ANONYMOUS_CREDENTIAL=true for a public bucket)"
    )


def test_an_endpoint_that_does_not_answer(
    s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.helpers import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    _clean_env(monkeypatch, {**s3.env(), "AWS_ENDPOINT_URL": dead})
    assert refused("s3://models/iris", cache_dir=tmp_path) == (
        f"modelUri 's3://models/iris' cannot be downloaded: the storage endpoint {dead} does not answer"
    )


def test_kserve_and_rclone_variables(s3: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host = s3.endpoint.removeprefix("http://")
    # KServe / kfserving: S3_ENDPOINT is a host, S3_USE_HTTPS=0 says plain HTTP.
    _clean_env(
        monkeypatch,
        {**isolated_aws_env(), "AWS_ACCESS_KEY_ID": s3.KEY, "AWS_SECRET_ACCESS_KEY": s3.SECRET,
         "S3_ENDPOINT": host, "S3_USE_HTTPS": "0"},
    )  # fmt: skip
    assert tree(resolve_model_uri("s3://models/iris", cache_dir=tmp_path / "kserve")) == MODEL
    # Seldon 1.8+'s rclone secret.
    _clean_env(
        monkeypatch,
        {**isolated_aws_env(), "RCLONE_CONFIG_S3_ENDPOINT": s3.endpoint,
         "RCLONE_CONFIG_S3_ACCESS_KEY_ID": s3.KEY, "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": s3.SECRET},
    )  # fmt: skip
    assert tree(resolve_model_uri("s3://models/iris", cache_dir=tmp_path / "rclone")) == MODEL


_RESOLVE_IN_CHILD = """
import sys
from pathlib import Path
from seldon_serving.components.storage import resolve_model_uri
print("started", flush=True)
print(resolve_model_uri(sys.argv[1], cache_dir=Path(sys.argv[2])), flush=True)
"""


def _children(uri: str, cache: Path, count: int, env: dict[str, str]) -> list[subprocess.Popen[str]]:
    child_env = {k: v for k, v in os.environ.items() if k not in S3_VARIABLES} | env
    return [
        subprocess.Popen(
            [sys.executable, "-c", _RESOLVE_IN_CHILD, uri, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env,
            cwd=ROOT,
        )
        for _ in range(count)
    ]


def _blocked_flocks(pids: list[int]) -> int:
    """How many of `pids` wait for a flock (the kernel lists waiters with `->` in /proc/locks)."""
    waiting = 0
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" in fields and fields[fields.index("->") + 1] == "FLOCK":
            waiting += int(fields[fields.index("->") + 4]) in pids
    return waiting


def test_concurrent_processes_download_once(tmp_path: Path) -> None:
    server = S3Server(tmp_path)
    try:
        server.put_tree("shared", {f"clf/{name}": body for name, body in MODEL.items()})
        server.hold()  # the first download waits until every process has come to the lock
        cache = tmp_path / "cache"
        children = _children("s3://shared/clf", cache, 4, server.env())
        try:
            wait_until(lambda: server.object_downloads("shared"), "a download started", timeout=60)
            pids = [child.pid for child in children]
            wait_until(lambda: _blocked_flocks(pids) == 3, "three processes wait on the lock", timeout=60)
            server.release()
            outputs = [child.communicate(timeout=60) for child in children]
        finally:
            for child in children:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        paths = {out.splitlines()[-1] for out, _err in outputs}
        assert all(child.returncode == 0 for child in children), [err for _out, err in outputs]
        assert len(paths) == 1
        assert tree(Path(paths.pop())) == MODEL
        # Each object was fetched once for the four processes.
        assert sorted(server.object_downloads("shared")) == sorted(f"clf/{name}" for name in MODEL)
    finally:
        server.stop()


def test_a_killed_download_leaves_nothing_taken_as_a_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = S3Server(tmp_path)
    try:
        server.put_tree("crash", {f"clf/{name}": body for name, body in MODEL.items()})
        cache = tmp_path / "cache"
        server.hold()
        (child,) = _children("s3://crash/clf", cache, 1, server.env())
        try:
            wait_until(lambda: server.object_downloads("crash"), "the download started", timeout=60)
            assert list(cache.glob(".*.partial-*")), "the download writes into a partial directory"
            child.send_signal(signal.SIGKILL)  # killed holding the lock, half way through
            child.wait()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        server.release()
        assert [
            p for p in cache.iterdir() if not p.name.endswith(".lock") and not p.name.startswith(".")
        ] == []
        # The next resolution takes the lock the dead process held, and downloads it all.
        _clean_env(monkeypatch, server.env())
        path = resolve_model_uri("s3://crash/clf", cache_dir=cache)
        assert tree(path) == MODEL
        assert list(cache.glob(".*.partial-*")) == []
    finally:
        server.stop()


def test_the_cache_is_used_after_the_store_is_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = S3Server(tmp_path)
    try:
        server.put_tree("gone", {f"clf/{name}": body for name, body in MODEL.items()})
        _clean_env(monkeypatch, server.env())
        first = resolve_model_uri("s3://gone/clf", cache_dir=tmp_path / "cache")
    finally:
        server.stop()
    again = resolve_model_uri("s3://gone/clf", cache_dir=tmp_path / "cache")
    assert again == first and tree(again) == MODEL
    # A URI that was never downloaded says the store does not answer.
    assert "does not answer" in refused("s3://gone/other", cache_dir=tmp_path / "cache")


def test_a_cache_directory_that_cannot_be_written(s3_env: S3Server, tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    message = refused("s3://models/iris", cache_dir=tmp_path / "file" / "cache")
    assert message.startswith(
        f"modelUri 's3://models/iris' cannot be cached: the cache directory {tmp_path}/file/cache"
    )


_HIDDEN = """
import sys
class Hide:  # this interpreter has no {module}, as one installed without the extra
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "{module}":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
from seldon_serving.components.storage import ModelUriError, resolve_model_uri
try:
    resolve_model_uri("{uri}")
except ModelUriError as error:
    print(error)
"""


@pytest.mark.parametrize(
    ("uri", "module", "extra"), [("s3://models/iris", "s3fs", "s3"), ("gs://models/iris", "gcsfs", "gcs")]
)
def test_a_missing_extra_names_the_pip_command(uri: str, module: str, extra: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _HIDDEN.format(module=module, uri=uri)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == (
        f"modelUri {uri!r} needs {module}, which is not installed: pip install 'seldon-serving[{extra}]'"
    ), result.stderr


# --- gs:// ---------------------------------------------------------------------------------


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[GcsServer]:
    server = GcsServer()
    try:
        _clean_env(monkeypatch, {"STORAGE_EMULATOR_HOST": server.host})
        server.put_tree("gmodels", {f"iris/{name}": body for name, body in MODEL.items()})
        server.put_tree("gmodels", {"one/model.txt": b"lightgbm"})
        yield server
    finally:
        server.stop()


def test_gs_prefix_object_and_errors(gcs: GcsServer, tmp_path: Path) -> None:
    path = resolve_model_uri("gs://gmodels/iris", cache_dir=tmp_path)
    assert tree(path) == MODEL
    assert resolve_model_uri("gs:gmodels/iris", cache_dir=tmp_path) == path
    assert resolve_model_uri("gs://gmodels/one/model.txt", cache_dir=tmp_path).read_bytes() == b"lightgbm"
    assert refused("gs://no-such-bucket/iris", cache_dir=tmp_path) == (
        f"modelUri 'gs://no-such-bucket/iris': the bucket 'no-such-bucket' does not exist (at http://{gcs.host})"
    )
    assert refused("gs://gmodels/irsi", cache_dir=tmp_path) == (
        "modelUri 'gs://gmodels/irsi': the bucket 'gmodels' holds no object or prefix 'irsi'"
    )


def test_gs_cache_outlives_the_store_and_a_store_that_does_not_answer(gcs: GcsServer, tmp_path: Path) -> None:
    path = resolve_model_uri("gs://gmodels/iris", cache_dir=tmp_path)
    gcs.stop()
    assert resolve_model_uri("gs://gmodels/iris", cache_dir=tmp_path) == path
    assert refused("gs://gmodels/one", cache_dir=tmp_path) == (
        "modelUri 'gs://gmodels/one' cannot be downloaded: the storage endpoint "
        f"http://{gcs.host} does not answer"
    )
