"""`seldon engine`: one predictor's engine in its pod (what the operator injects)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from seldon_serving.cli.errors import one_sentence
from seldon_serving.cli.options import (
    checked_request_logger_url,
    node_tls_options,
    request_logger_option,
    server_options,
    server_settings,
    state_store_option,
)
from seldon_serving.settings import EngineSettings


@click.command("engine")
@click.option(
    "--predictor",
    default=None,
    envvar="ENGINE_PREDICTOR",
    metavar="BASE64",
    help="The predictor to serve: base64 of its JSON, endpoints filled in [$ENGINE_PREDICTOR; "
    "else ./deploymentdef.json; else a SIMPLE_MODEL].",
)
@click.option(
    "--predictor-file",
    type=click.Path(dir_okay=False, path_type=Path),
    default="deploymentdef.json",
    show_default=True,
    help="The predictor's JSON, when --predictor is not given.",
)
@click.option(
    "--deployment-name", default="", envvar="DEPLOYMENT_NAME", help="The SeldonDeployment [$DEPLOYMENT_NAME]."
)
@click.option(
    "--namespace",
    default="default",
    envvar="DEPLOYMENT_NAMESPACE",
    show_default=True,
    help="Its namespace [$DEPLOYMENT_NAMESPACE].",
)
@server_options(
    http_port=8000, grpc_port=5001, http_env="ENGINE_SERVER_PORT", grpc_env="ENGINE_SERVER_GRPC_PORT"
)
@state_store_option
@request_logger_option("SELDON_REQUEST_LOGGER_URL", "REQUEST_LOGGER_DEFAULT_ENDPOINT")
@node_tls_options
@one_sentence
def engine_command(
    predictor: str | None,
    predictor_file: Path,
    deployment_name: str,
    namespace: str,
    host: str,
    http_port: int,
    grpc_port: int,
    workers: int,
    max_message_size: int,
    log_level: str,
    state_store: str | None,
    request_logger_url: str | None,
    request_logger_queue_size: int,
    **connection: Any,
) -> None:
    """Serve one predictor of a SeldonDeployment: Seldon's engine API in the predictor's pod.

    What Seldon's operator ran as `seldon-container-engine`: it calls the graph's containers at
    the endpoints in the predictor and answers /api/v0.1/predictions, /feedback, /ready,
    /pause, /prometheus and gRPC seldon.protos.Seldon.
    """
    from seldon_serving.deploy.engine import serve_engine
    from seldon_serving.servers import logs

    logs.configure(log_level)
    settings = EngineSettings(
        predictor=predictor or None,
        predictor_file=predictor_file,
        deployment_name=deployment_name,
        namespace=namespace or "default",
        state_store=state_store or None,
        request_logger_url=checked_request_logger_url(request_logger_url),
        request_logger_queue=request_logger_queue_size,
    )
    server = server_settings(host, http_port, grpc_port, workers, max_message_size, log_level, **connection)
    sys.exit(serve_engine(settings, server))
