"""Real object stores on free loopback ports, for the modelUri tests: moto's S3-compatible server
in a process of its own (with a log of every request it answered, so a test can count the
objects downloaded), and gcp-storage-emulator for gs://.

`python -m tests.s3_server PORT LOG` is what `S3Server` starts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import ROOT, free_port

# Every variable that points boto or fsspec somewhere: a test starts from none of the user's.
S3_VARIABLES = (
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
    "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "S3_ENDPOINT", "S3_USE_HTTPS", "USE_SSL",
    "S3_VERIFY_SSL", "AWS_ANONYMOUS_CREDENTIAL", "S3_ANONYMOUS", "RCLONE_CONFIG_S3_ENDPOINT",
    "RCLONE_CONFIG_S3_ACCESS_KEY_ID", "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY", "STORAGE_EMULATOR_HOST",
    "RCLONE_CONFIG_GS_ANONYMOUS", "XDG_CACHE_HOME",
)  # fmt: skip


def isolated_aws_env() -> dict[str, str]:
    """Settings that keep boto to the test's server: no credentials files, no EC2 metadata
    probe (it would leave 127.0.0.1)."""
    return {
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_DEFAULT_REGION": "us-east-1",
    }


HOLD = "s3-hold"  # beside the request log: while it exists, objects' content is not sent


class S3Server:
    """moto's S3 in a child process on a free 127.0.0.1 port."""

    KEY = "testing-key"
    SECRET = "testing-secret"

    def __init__(self, workdir: Path) -> None:
        self.log = workdir / "s3-requests.log"
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        out = open(workdir / "s3-server.out", "wb")  # noqa: SIM115 - the child writes it until stopped
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.s3_server", str(self.port), str(self.log)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        out.close()
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the S3 server exited: {(workdir / 's3-server.out').read_text()[-2000:]}")
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError("the S3 server did not answer within 30 s") from None
                time.sleep(0.05)

    def env(self) -> dict[str, str]:
        """What a user of this server sets: credentials and the endpoint."""
        return {
            **isolated_aws_env(),
            "AWS_ACCESS_KEY_ID": self.KEY,
            "AWS_SECRET_ACCESS_KEY": self.SECRET,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.KEY,
            aws_secret_access_key=self.SECRET,
            region_name="us-east-1",
        )

    def put_tree(self, bucket: str, files: dict[str, bytes]) -> None:
        """Create `bucket` (if needed) holding `files` (key: content)."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if bucket not in existing:
            client.create_bucket(Bucket=bucket)
        for key, body in files.items():
            client.put_object(Bucket=bucket, Key=key, Body=body)

    def requests(self) -> list[tuple[str, str, str]]:
        """Every request answered so far: (method, path, query)."""
        if not self.log.exists():
            return []
        rows = []
        for line in self.log.read_text().splitlines():
            method, path, query = line.split(" ", 2)
            rows.append((method, path, query))
        return rows

    def object_downloads(self, bucket: str) -> list[str]:
        """The keys of `bucket` whose content was fetched (GET of an object, not a listing)."""
        prefix = f"/{bucket}/"
        return [
            path[len(prefix) :]
            for method, path, _query in self.requests()
            if method == "GET" and path.startswith(prefix) and len(path) > len(prefix)
        ]

    def hold(self) -> None:
        """From now on the server answers no GET of an object's content until `release`."""
        (self.log.parent / HOLD).touch()

    def release(self) -> None:
        (self.log.parent / HOLD).unlink(missing_ok=True)

    def stop(self) -> None:
        self.release()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


class GcsServer:
    """gcp-storage-emulator (in memory) on a free 127.0.0.1 port, in a thread of this process."""

    def __init__(self) -> None:
        from gcp_storage_emulator.server import create_server

        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self._server: Any = create_server("127.0.0.1", self.port, in_memory=True)
        self._server.start()

    def put_tree(self, bucket: str, files: dict[str, bytes]) -> None:
        from gcsfs.core import GCSFileSystem

        fs = GCSFileSystem(endpoint_url=f"http://{self.host}", token="anon", skip_instance_cache=True)
        if not fs.exists(bucket):
            fs.mkdir(bucket)
        for key, body in files.items():
            fs.pipe(f"{bucket}/{key}", body)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def _logging(app: Callable[..., Iterable[bytes]], log: Path) -> Callable[..., Iterable[bytes]]:
    lock = threading.Lock()
    hold = log.parent / HOLD

    def logged(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
        with lock, open(log, "a") as out:
            out.write(f"{method} {path} {environ.get('QUERY_STRING', '')}\n")
        # An object's content waits while the hold file exists (a minute at most).
        deadline = time.monotonic() + 60
        while method == "GET" and path.count("/") >= 2 and hold.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        return app(environ, start_response)

    return logged


def main(argv: list[str]) -> None:
    from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    port, log = int(argv[0]), Path(argv[1])
    app = _logging(DomainDispatcherApplication(create_backend_app), log)
    server = make_server("127.0.0.1", port, app, threaded=True, request_handler=MotoRequestHandler)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
