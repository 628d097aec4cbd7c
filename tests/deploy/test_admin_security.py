"""Who may use the admin API of a real `seldon serve`: the admin port (127.0.0.1 by default),
or the admin token on any port, never the client's address.

A reverse proxy on the same host (what Ambassador or a sidecar is on Kubernetes) makes every
client look like loopback: applying through it must depend on the token alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import ClientSession, web

from tests.deploy.gateway import example_model, write
from tests.helpers import Gateway, free_port, gateway, seldon_bin, wait_for_port
from tests.tls_certs import make_certs

TOKEN = "admin-token-for-the-tests-0123456789"
DIGEST = "sha256:" + hashlib.sha256(TOKEN.encode()).hexdigest()


def token_file(directory: Path, text: str = TOKEN, mode: int = 0o600) -> Path:
    path = directory / "admin-token"
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@contextlib.contextmanager
def reverse_proxy(target: str) -> Iterator[str]:
    """A tiny aiohttp reverse proxy on 127.0.0.1 forwarding every request (method, path, headers,
    body) to `target`: the gateway sees every client as 127.0.0.1."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner: list[web.AppRunner] = []

    async def forward(request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with (
            ClientSession() as session,
            session.request(
                request.method, target + request.path_qs, headers=headers, data=await request.read()
            ) as answer,
        ):
            body = await answer.read()
            kept = {"content-type": answer.headers.get("content-type", "application/octet-stream")}
            return web.Response(status=answer.status, body=body, headers=kept)

    async def start() -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        runner.append(web.AppRunner(app, access_log=None))
        await runner[0].setup()
        await web.TCPSite(runner[0], "127.0.0.1", port).start()
        started.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    assert started.is_set()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def apply_body(name: str) -> dict[str, object]:
    return {"manifest": example_model(name)}


def info(response: httpx.Response) -> str:
    body = response.json()
    assert body["status"]["status"] == "FAILURE", body
    return str(body["status"]["info"])


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SELDON_")}
    return subprocess.run(
        [seldon_bin(), *args], capture_output=True, text=True, timeout=60, env={**clean, **(env or {})}
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    """A gateway started with an admin token file (and DEBUG logs, to check the token stays out)."""
    directory = tmp_path_factory.mktemp("guarded")
    args = ["--admin-token-file", str(token_file(directory))]
    with gateway(state_dir=directory / "state", args=args, log_level="DEBUG") as server:
        yield server


def test_apply_through_a_proxy_on_this_host_needs_the_token(guarded: Gateway) -> None:
    with reverse_proxy(guarded.url) as proxy, httpx.Client(timeout=30) as client:
        refused = client.put(f"{proxy}/admin/deployments", json=apply_body("proxied"))
        assert refused.status_code == 401 and "Authorization: Bearer <token>" in info(refused)
        wrong = client.put(f"{proxy}/admin/deployments", json=apply_body("proxied"), headers=bearer("guess"))
        assert wrong.status_code == 401
        assert info(wrong) == "the admin token sent is not this server's admin token"
        assert (
            client.get(f"{proxy}/admin/deployments/default/proxied", headers=bearer(TOKEN)).status_code == 404
        )
        accepted = client.put(f"{proxy}/admin/deployments", json=apply_body("proxied"), headers=bearer(TOKEN))
        assert accepted.status_code == 200 and accepted.json()["result"] == "created"
        answer = client.post(
            f"{proxy}/seldon/proxied/api/v0.1/predictions", json={"data": {"ndarray": [[1.0]]}}
        )
        assert answer.status_code == 200  # the API itself is for everyone
        # pausing is admin too, and so are the metrics on the public port
        assert client.get(f"{proxy}/pause").status_code == 401
        assert client.get(f"{guarded.url}/ready").text == "ready"
        assert client.get(f"{proxy}/metrics").status_code == 401
        assert "seldon_api_executor" in client.get(f"{proxy}/metrics", headers=bearer(TOKEN)).text
    with httpx.Client(timeout=30) as client:  # the admin port wants it too
        assert client.get(f"{guarded.admin_url}/admin/deployments").status_code == 401
        assert client.get(f"{guarded.admin_url}/metrics").status_code == 401
        listed = client.get(f"{guarded.admin_url}/admin/deployments", headers=bearer(TOKEN)).json()
        assert "proxied" in {item["manifest"]["metadata"]["name"] for item in listed["items"]}
    assert TOKEN not in guarded.log() and "guess" not in guarded.log()


def test_seldon_apply_get_delete_take_the_token_from_a_flag_or_the_environment(
    guarded: Gateway, tmp_path: Path
) -> None:
    manifest = write(tmp_path, "cli.yaml", example_model("by-cli"))
    mine = token_file(tmp_path)
    server = ["--server", guarded.admin_url]
    missing = one_error_line(cli("apply", "-f", str(manifest), *server))
    assert missing == (
        f"error: the admin API at {guarded.admin_url} needs the admin token: give --admin-token-file FILE, "
        "$SELDON_ADMIN_TOKEN_FILE or $SELDON_ADMIN_TOKEN"
    )
    wrong = one_error_line(cli("get", *server, env={"SELDON_ADMIN_TOKEN": "guess"}))
    assert "refused the token of $SELDON_ADMIN_TOKEN" in wrong
    applied = cli("apply", "-f", str(manifest), *server, "--admin-token-file", str(mine))
    assert applied.stdout.strip() == "seldondeployment/by-cli created", applied.stderr
    env = {"SELDON_SERVER": guarded.admin_url, "SELDON_ADMIN_TOKEN": TOKEN}
    listed = cli("get", "by-cli", env=env)
    assert listed.returncode == 0 and listed.stdout.splitlines()[1].split()[:2] == ["by-cli", "Available"]
    env = {"SELDON_SERVER": guarded.admin_url, "SELDON_ADMIN_TOKEN_FILE": str(mine)}
    deleted = cli("delete", "by-cli", env=env)
    assert deleted.stdout.strip() == 'seldondeployment "by-cli" deleted', deleted.stderr
    (tmp_path / "digest").mkdir()
    digest_file = token_file(tmp_path / "digest", DIGEST)
    held = one_error_line(cli("get", *server, "--admin-token-file", str(digest_file)))
    assert "holds the token's digest" in held


def test_a_sha256_token_file_is_compared_by_digest_and_serves_public_metrics_when_asked(
    tmp_path: Path,
) -> None:
    args = ["--admin-token-file", str(token_file(tmp_path, DIGEST)), "--public-metrics"]
    with gateway(state_dir=tmp_path / "state", args=args) as server, httpx.Client(timeout=30) as client:
        url = f"{server.url}/admin/deployments"
        assert client.put(url, json=apply_body("hashed"), headers=bearer(TOKEN)).json()["result"] == "created"
        # the digest itself is not the token: whoever reads the server's file cannot use it
        assert client.get(url, headers=bearer(DIGEST)).status_code == 401
        assert client.get(url, headers=bearer(DIGEST.removeprefix("sha256:"))).status_code == 401
        assert client.get(f"{server.url}/metrics").status_code == 200  # --public-metrics
        assert client.get(f"{server.url}/prometheus").status_code == 200
        assert client.get(f"{server.url}/pause").status_code == 401  # metrics only, not admin


def test_without_a_token_the_admin_api_is_on_the_loopback_admin_port_only(tmp_path: Path) -> None:
    # The public port on every address; the admin port keeps to 127.0.0.1.  Another address of
    # this host that the public port answers on, 127.0.0.2, stands for the machine's public one
    # (no test traffic leaves loopback).
    args = ["--host", "0.0.0.0"]
    with gateway(state_dir=tmp_path / "state", args=args) as server, httpx.Client(timeout=30) as client:
        assert server.admin_port is not None
        assert client.get(f"http://127.0.0.2:{server.http_port}/ping").text == "pong"
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection(("127.0.0.2", server.admin_port), 5),
        ):
            pass
        with reverse_proxy(server.url) as proxy:
            for headers in ({}, bearer(TOKEN)):
                refused = client.put(f"{proxy}/admin/deployments", json=apply_body("nope"), headers=headers)
                assert refused.status_code == 404
                assert f"it is on the admin port, 127.0.0.1:{server.admin_port}" in info(refused)
            metrics = client.get(f"{proxy}/metrics")
            assert metrics.status_code == 404 and "--public-metrics" in info(metrics)
            assert client.get(f"{proxy}/unpause").status_code == 404
        assert client.get(f"{server.admin_url}/admin/deployments/default/nope").status_code == 404
        manifest = write(tmp_path, "open.yaml", example_model("open"))
        assert cli("apply", "-f", str(manifest), "--server", server.admin_url).stdout.strip() == (
            "seldondeployment/open created"
        )
        row = {"data": {"ndarray": [[1.0]]}}
        assert client.post(f"{server.url}/seldon/open/api/v0.1/predictions", json=row).status_code == 200
        assert "seldon_api_executor" in client.get(f"{server.admin_url}/prometheus").text
        assert client.get(f"{server.admin_url}/pause").text == "paused"
        assert client.get(f"{server.url}/ready").status_code == 503
        assert client.get(f"{server.admin_url}/unpause").text == "unpaused"
        public = one_error_line(cli("get", "--server", server.url))
        assert f"admin port, 127.0.0.1:{server.admin_port}" in public


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        (
            lambda d: ["--admin-token-file", str(token_file(d, mode=0o644))],
            "can be read by other users (mode 0644)",
        ),
        (lambda d: ["--admin-token-file", str(token_file(d, text="  "))], "is empty"),
        (
            lambda d: ["--admin-token-file", str(d / "nowhere")],
            "does not exist: make one with `seldon admin-token",
        ),
        (
            lambda d: ["--admin-token-file", str(token_file(d, text="sha256:abc"))],
            "without the 64 hex digits",
        ),
        (lambda d: ["--admin-host", "0.0.0.0"], "--admin-host 0.0.0.0 opens the admin API to other hosts"),
        (lambda d: ["--allow-remote-admin"], "--allow-remote-admin is gone"),
    ],
    ids=["readable-by-others", "empty", "missing", "bad-digest", "exposed-without-token", "old-flag"],
)
def test_start_up_refusals_name_the_file_or_flag(setup, expected: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    argv = ["serve", "--http-port", str(free_port()), "--grpc-port", str(free_port())]
    argv += ["--admin-port", str(free_port()), "--state-dir", str(tmp_path / "state"), *setup(tmp_path)]
    line = one_error_line(cli(*argv))
    assert expected in line
    if "--admin-token-file" in argv:
        assert str(argv[argv.index("--admin-token-file") + 1]) in line  # names the file


def test_an_exposed_admin_port_with_a_token_starts(tmp_path: Path) -> None:
    args = ["--admin-host", "0.0.0.0", "--admin-token-file", str(token_file(tmp_path))]
    with gateway(state_dir=tmp_path / "state", args=args) as server:
        assert httpx.get(f"{server.admin_url}/admin/deployments", headers=bearer(TOKEN)).json() == {
            "items": []
        }
        assert httpx.get(f"http://127.0.0.2:{server.admin_port}/admin/deployments").status_code == 401


def test_seldon_admin_token_writes_a_private_token_and_prints_its_digest(tmp_path: Path) -> None:
    path = tmp_path / "token"
    made = cli("admin-token", str(path))
    assert made.returncode == 0, made.stderr
    token = path.read_text().strip()
    assert len(token) >= 40 and path.stat().st_mode & 0o777 == 0o600
    assert made.stdout.strip() == "sha256:" + hashlib.sha256(token.encode()).hexdigest()
    again = one_error_line(cli("admin-token", str(path)))
    assert "--force" in again and path.read_text().strip() == token  # never overwritten silently
    assert cli("admin-token", str(path), "--force").returncode == 0 and path.read_text().strip() != token


def test_seldon_get_reaches_a_mutual_tls_admin_port_with_its_ca_and_a_client_certificate(
    tmp_path: Path,
) -> None:
    certs = make_certs(tmp_path / "certs")
    args = ["--tls-cert", str(certs.server_cert), "--tls-key", str(certs.server_key)]
    args += ["--tls-client-ca", str(certs.ca), "--admin-token-file", str(token_file(tmp_path))]
    with gateway(state_dir=tmp_path / "state", args=args, ready=False) as server:
        url = f"https://127.0.0.1:{server.admin_port}"
        wait_for_port(server.admin_port, server.process)
        base = ["get", "--server", url, "--admin-token-file", str(tmp_path / "admin-token")]
        unverified = one_error_line(cli(*base))
        assert "cannot be verified" in unverified and "--ca FILE" in unverified
        no_cert = one_error_line(cli(*base, "--ca", str(certs.ca)))
        assert "give --cert FILE and --key FILE" in no_cert
        mutual = ["--ca", str(certs.ca), "--cert", str(certs.client_cert), "--key", str(certs.client_key)]
        assert one_error_line(cli(*base[:3], *mutual)).startswith(
            f"error: the admin API at {url} needs the admin"
        )
        env = {"SELDON_CA": str(certs.ca), "SELDON_CLIENT_CERT": str(certs.client_cert)}
        listed = cli(*base, "--key", str(certs.client_key), env=env)
        assert (
            listed.returncode == 0 and listed.stderr.strip() == "No deployments found in namespace 'default'."
        )
        plain = one_error_line(cli("get", "--server", f"http://127.0.0.1:{server.admin_port}"))
        assert plain.startswith("error: no Seldon Serving server answers at")  # a plain client gets nothing
