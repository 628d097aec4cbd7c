"""`seldon build`: a model image from a Seldon s2i model directory."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from seldon_serving.cli.errors import one_sentence


@click.command("build")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--image", required=True, help="Name (and tag) of the image to build, e.g. myorg/mymodel:0.1.")
@click.option(
    "--service-type",
    default=None,
    help="MODEL, ROUTER, TRANSFORMER, OUTPUT_TRANSFORMER or COMBINER "
    "[default: SERVICE_TYPE of .s2i/environment, else MODEL].",
)
@click.option(
    "--model-name",
    default=None,
    metavar="CLASS",
    help="The class to serve (`MyModel`: class MyModel in MyModel.py) "
    "[default: MODEL_NAME of .s2i/environment].",
)
@click.option(
    "--base-image",
    default=None,
    envvar="SELDON_RUNTIME_IMAGE",
    help="The image to build on [$SELDON_RUNTIME_IMAGE; default: our runtime image].",
)
@click.option(
    "--dockerfile-only", is_flag=True, help="Write the Dockerfile and print the build command; build nothing."
)
@one_sentence
def build_command(
    model_dir: Path,
    image: str,
    service_type: str | None,
    model_name: str | None,
    base_image: str | None,
    dockerfile_only: bool,
) -> None:
    """Build a model image from MODEL_DIR, as Seldon's s2i builder images did.

    MODEL_DIR holds the class file(s), an optional requirements.txt and an optional
    .s2i/environment (MODEL_NAME, SERVICE_TYPE, ...).  A Dockerfile is written into it
    (Dockerfile.seldon when it has a Dockerfile of its own) that runs
    `seldon-core-microservice CLASS --service-type TYPE` on our runtime image, and docker,
    podman or buildah (the first on PATH) builds it; with none, the command to run is printed.
    """
    from seldon_serving.deploy.build import build

    result = build(
        model_dir,
        image,
        service_type=service_type,
        model_name=model_name,
        base_image=base_image,
        dockerfile_only=dockerfile_only,
        report=lambda line: click.echo(line, err=True),
    )
    command = shlex.join(result.command)
    if result.built:
        click.echo(f"built {image}")
    elif dockerfile_only:
        click.echo(command)
    else:
        click.echo("no docker, podman or buildah on PATH; build the image with:", err=True)
        click.echo(command)
