"""`seldon serve`: the gateway with its local control plane."""

from __future__ import annotations

import logging
import os
import sys

import click

from seldon_serving.cli.errors import one_sentence


@click.command("serve")
@click.argument("paths", nargs=-1, metavar="[FILE_OR_DIR]...")
@click.option("--http-port", type=int, default=8003, show_default=True, help="REST port (Ambassador's).")
@click.option("--grpc-port", type=int, default=5001, show_default=True, help="gRPC port (the engine's).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option(
    "--state-dir",
    default=None,
    help="Where deployments and router/detector state are kept [$SELDON_STATE_DIR or ./.seldon-state].",
)
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option(
    "--max-message-size",
    type=int,
    default=4 * 1024 * 1024,
    show_default=True,
    help="Largest REST body / gRPC message in bytes.",
)
@click.option(
    "--allow-remote-admin",
    is_flag=True,
    help="Let clients on other hosts apply/delete deployments (default: this host only).",
)
@click.option(
    "--oauth",
    is_flag=True,
    default=os.environ.get("SELDON_OAUTH", "").lower() in ("1", "true", "yes", "on"),
    help="Put Seldon's OAuth API front end before every deployment (POST /oauth/token, bearer tokens) "
    "[$SELDON_OAUTH].",
)
@click.option(
    "--oauth-token-ttl",
    type=float,
    default=43200,
    show_default=True,
    help="Seconds an OAuth access token stays valid.",
)
@click.option("--log-level", default=os.environ.get("SELDON_LOG_LEVEL", "INFO"), show_default=True)
@one_sentence
def serve_command(
    paths: tuple[str, ...],
    http_port: int,
    grpc_port: int,
    workers: int,
    state_dir: str | None,
    host: str,
    max_message_size: int,
    allow_remote_admin: bool,
    oauth: bool,
    oauth_token_ttl: float,
    log_level: str,
) -> None:
    """Serve SeldonDeployments: Seldon's external REST and gRPC API for every deployment.

    Every SeldonDeployment in the FILEs (and in every *.yaml, *.yml, *.json of each
    DIR) is applied at start; deployments applied earlier come back from the state
    directory.  Change them while serving with `seldon apply` / `seldon delete`.
    """
    from seldon_serving.deploy.files import collect
    from seldon_serving.deploy.local import serve_gateway
    from seldon_serving.deploy.local import state_dir as resolve_state_dir
    from seldon_serving.servers.runner import ServeOptions

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    collected = collect(list(paths))  # a bad manifest stops here, before anything starts
    for line in collected.skipped:
        click.echo(line, err=True)
    options = ServeOptions(
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        workers=max(1, workers),
        max_message=max_message_size,
    )
    directory = resolve_state_dir(state_dir)
    sys.exit(
        serve_gateway(
            collected.manifests,
            options,
            directory,
            remote_admin=allow_remote_admin,
            oauth=oauth,
            oauth_ttl=oauth_token_ttl,
        )
    )
