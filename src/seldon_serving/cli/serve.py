"""`seldon serve`: the gateway with its local control plane."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from seldon_serving.cli.errors import one_sentence
from seldon_serving.cli.options import (
    model_places,
    model_places_options,
    node_tls_options,
    register_servers,
    server_options,
    server_registry_options,
    server_settings,
    state_store_option,
)
from seldon_serving.settings import (
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
    "--allow-remote-admin",
    is_flag=True,
    help="Let clients on other hosts apply/delete deployments (default: this host only).",
)
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
    **connection: Any,
) -> None:
    """Serve SeldonDeployments: Seldon's external REST and gRPC API for every deployment.

    Every SeldonDeployment in the FILEs (and in every *.yaml, *.yml, *.json of each
    DIR) is applied at start; deployments applied earlier come back from the state
    directory.  Change them while serving with `seldon apply` / `seldon delete`.
    Model servers (SKLEARN_SERVER, XGBOOST_SERVER, LIGHTGBM_SERVER, MLFLOW_SERVER and those
    of --server) load the model their node's modelUri names.
    """
    from seldon_serving.deploy.files import collect
    from seldon_serving.deploy.local import serve_gateway
    from seldon_serving.servers import logs

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
        remote_admin=allow_remote_admin,
        oauth=oauth,
        oauth_ttl=oauth_token_ttl,
        state_store=state_store or None,
        cluster_engines=cluster_engines,
        execution=execution,
        models=model_places(pvc_root, model_cache),
        servers=servers,
        server_config=server_config.resolve() if server_config is not None else None,
    )
    server = server_settings(host, http_port, grpc_port, workers, max_message_size, log_level, **connection)
    sys.exit(serve_gateway(collected.manifests, gateway, server, watch=list(paths) if reload else None))
