"""`seldon serve`: the gateway with its local control plane."""

from __future__ import annotations

import ipaddress
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from seldon_serving.cli.errors import CliError, one_sentence
from seldon_serving.cli.options import (
    PORT,
    checked_request_logger_url,
    model_places,
    model_places_options,
    node_tls_options,
    register_servers,
    request_logger_option,
    server_options,
    server_registry_options,
    server_settings,
    state_store_option,
)
from seldon_serving.settings import (
    DEFAULT_ADMIN_PORT,
    DEFAULT_EXECUTION,
    DEFAULT_OAUTH_TTL,
    DEFAULT_STATE_DIR,
    EXECUTION_MODES,
    GatewaySettings,
)


@click.command("serve")
@click.argument("paths", nargs=-1, metavar="[FILE_OR_DIR]...")
@server_options(http_port=8003, grpc_port=5001, http_env=None, grpc_env=None)
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_STATE_DIR,
    envvar="SELDON_STATE_DIR",
    show_default=True,
    help="Where deployments, router/detector state and OAuth tokens are kept [$SELDON_STATE_DIR].",
)
@state_store_option
@click.option(
    "--admin-port",
    type=PORT,
    default=DEFAULT_ADMIN_PORT,
    envvar="SELDON_ADMIN_PORT",
    show_default=True,
    help="Port of the admin API (seldon apply/get/delete), /pause, /unpause and Prometheus; 0: none "
    "[$SELDON_ADMIN_PORT].",
)
@click.option(
    "--admin-host",
    default="127.0.0.1",
    envvar="SELDON_ADMIN_HOST",
    show_default=True,
    help="Address of the admin port; another than loopback needs --admin-token-file [$SELDON_ADMIN_HOST].",
)
@click.option(
    "--admin-token-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    envvar="SELDON_ADMIN_TOKEN_FILE",
    help="A file (mode 600) holding the admin token, or `sha256:<hex>` of it (`seldon admin-token FILE` "
    "makes one): every admin call then needs `Authorization: Bearer <token>`, and the public port "
    "answers them too [$SELDON_ADMIN_TOKEN_FILE].",
)
@click.option(
    "--public-metrics",
    is_flag=True,
    envvar="SELDON_PUBLIC_METRICS",
    help="Serve Prometheus (/metrics, /prometheus) on the public REST port without the admin token "
    "[$SELDON_PUBLIC_METRICS].",
)
@click.option(
    "--dashboard-public",
    is_flag=True,
    envvar="SELDON_DASHBOARD_PUBLIC",
    help="Serve the live dashboard (/dashboard) to other hosts too, not only to this one (loopback); "
    "with --admin-token-file it still needs the token [$SELDON_DASHBOARD_PUBLIC].",
)
@click.option(
    "--dashboard-payloads",
    is_flag=True,
    envvar="SELDON_DASHBOARD_PAYLOADS",
    help="Show the payloads of the recent requests on the dashboard (redacted by default) "
    "[$SELDON_DASHBOARD_PAYLOADS].",
)
@click.option("--allow-remote-admin", is_flag=True, hidden=True)  # gone: says what replaced it
@click.option(
    "--oauth",
    is_flag=True,
    envvar="SELDON_OAUTH",
    help="Put Seldon's OAuth API front end before every deployment (POST /oauth/token, bearer tokens) "
    "[$SELDON_OAUTH].",
)
@click.option(
    "--execution",
    type=click.Choice(EXECUTION_MODES),
    default=DEFAULT_EXECUTION,
    envvar="SELDON_EXECUTION",
    show_default=True,
    help="How a Python class runs when its manifest does not say (seldon.io/execution): in the "
    "gateway's event loop, in a thread pool of its own, or in a process of its own [$SELDON_EXECUTION].",
)
@click.option(
    "--cluster-engines",
    is_flag=True,
    envvar="SELDON_CLUSTER_ENGINES",
    help="Run no graph: forward each deployment's calls to its predictors' engines on the Kubernetes "
    "cluster (<name>-<predictor>.<namespace>:8000), as the OAuth front end of `seldon k8s install "
    "--with-apife` does [$SELDON_CLUSTER_ENGINES].",
)
@click.option(
    "--reload",
    is_flag=True,
    help="Watch the FILEs and DIRs, and the Python files their classes load, and re-apply on every "
    "change (graphs are swapped, requests in flight finish).  For development.",
)
@request_logger_option("SELDON_REQUEST_LOGGER_URL")
@server_registry_options
@model_places_options
@node_tls_options
@click.option(
    "--oauth-token-ttl",
    type=click.FloatRange(min=0, min_open=True),
    default=DEFAULT_OAUTH_TTL,
    show_default=True,
    help="Seconds an OAuth access token stays valid.",
)
@one_sentence
def serve_command(
    paths: tuple[str, ...],
    host: str,
    http_port: int,
    grpc_port: int,
    workers: int,
    max_message_size: int,
    log_level: str,
    state_dir: Path,
    state_store: str | None,
    admin_port: int,
    admin_host: str,
    admin_token_file: Path | None,
    public_metrics: bool,
    dashboard_public: bool,
    dashboard_payloads: bool,
    allow_remote_admin: bool,
    oauth: bool,
    execution: str,
    cluster_engines: bool,
    oauth_token_ttl: float,
    reload: bool,
    servers: tuple[str, ...],
    server_config: Path | None,
    pvc_root: Path | None,
    model_cache: Path | None,
    request_logger_url: str | None,
    request_logger_queue_size: int,
    **connection: Any,
) -> None:
    """Serve SeldonDeployments: Seldon's external REST and gRPC API for every deployment.

    Every SeldonDeployment in the FILEs (and in every *.yaml, *.yml, *.json of each
    DIR) is applied at start; deployments applied earlier come back from the state
    directory.  Change them while serving with `seldon apply` / `seldon delete`, which talk
    to the admin port (127.0.0.1:8004; with --admin-token-file, only with its token).
    Model servers (SKLEARN_SERVER, XGBOOST_SERVER, LIGHTGBM_SERVER, MLFLOW_SERVER and those
    of --server) load the model their node's modelUri names.
    """
    from seldon_serving.deploy.files import collect
    from seldon_serving.deploy.local import serve_gateway
    from seldon_serving.servers import logs
    from seldon_serving.servers.admin import read_token_file

    if allow_remote_admin:
        raise CliError(
            "--allow-remote-admin is gone: the admin API has its own port (--admin-host, --admin-port) "
            "and answers other hosts only with a token (--admin-token-file FILE; make one with "
            "`seldon admin-token FILE`)"
        )
    if admin_token_file is None and admin_port and not _loopback(admin_host):
        raise CliError(
            f"--admin-host {admin_host} opens the admin API to other hosts: add --admin-token-file FILE "
            "(make one with `seldon admin-token FILE`), or keep the admin port on 127.0.0.1"
        )
    if admin_port and admin_port in (http_port, grpc_port):
        raise CliError(f"--admin-port {admin_port} is also the REST or gRPC port: give it a port of its own")
    admin_token = read_token_file(admin_token_file) if admin_token_file is not None else None
    if reload and not paths:
        raise click.UsageError("--reload watches the FILEs and DIRs given: name at least one")
    logs.configure(log_level)
    register_servers(servers, server_config)  # before the manifests that name them are read
    # A bad manifest stops here, before anything starts (so does a model server whose
    # framework is not installed, unless graphs run on a cluster).
    collected = collect(list(paths), servers_installed=not cluster_engines)
    for line in collected.skipped:
        click.echo(line, err=True)
    gateway = GatewaySettings(
        state_dir=state_dir.expanduser().resolve(),
        admin_token=admin_token,
        public_metrics=public_metrics,
        dashboard_public=dashboard_public,
        dashboard_payloads=dashboard_payloads,
        oauth=oauth,
        oauth_ttl=oauth_token_ttl,
        state_store=state_store or None,
        cluster_engines=cluster_engines,
        execution=execution,
        models=model_places(pvc_root, model_cache),
        servers=servers,
        server_config=server_config.resolve() if server_config is not None else None,
        request_logger_url=checked_request_logger_url(request_logger_url),
        request_logger_queue=request_logger_queue_size,
    )
    server = server_settings(host, http_port, grpc_port, workers, max_message_size, log_level, **connection)
    server = replace(server, admin_host=admin_host, admin_port=admin_port or None)
    sys.exit(serve_gateway(collected.manifests, gateway, server, watch=list(paths) if reload else None))


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve anywhere
