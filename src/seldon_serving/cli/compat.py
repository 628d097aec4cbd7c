"""Console-script entry of the `seldon-core-microservice` drop-in."""

from __future__ import annotations

from seldon_serving.cli.microservice import seldon_core_microservice_command


def seldon_core_microservice() -> None:
    seldon_core_microservice_command(prog_name="seldon-core-microservice")
