"""Offline manifest commands: `seldon validate`, `seldon convert`, `seldon generate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from seldon_serving.cli.deployments import dump
from seldon_serving.cli.errors import one_sentence
from seldon_serving.cli.options import register_servers, server_registry_options

output_option = click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)


@click.command("validate")
@click.argument("files", nargs=-1, required=True)
@server_registry_options
@one_sentence
def validate_command(files: tuple[str, ...], servers: tuple[str, ...], server_config: Path | None) -> None:
    """Check manifests without serving them: ok per deployment, or what is wrong (file and field).

    Every rule `seldon apply` checks, and also that each MODEL_NAME class (and the class of
    each model server of --server / --server-config) is found in the manifest's directory
    (its file is read, not run).  Models are not read and frameworks need not be installed.
    """
    from seldon_serving.deploy.files import collect, manifest_files
    from seldon_serving.spec import ManifestError

    register_servers(servers, server_config)
    bad = 0
    for given in files:
        try:
            paths = [str(p) for p in manifest_files([given])] if given != "-" else ["-"]
        except ManifestError as exc:
            click.echo(f"error: {exc}", err=True)
            bad += 1
            continue
        for path in paths:
            try:
                stdin_text = sys.stdin.read() if path == "-" else None
                collected = collect([path], stdin_text=stdin_text, find_classes=True)
            except ManifestError as exc:
                click.echo(f"error: {exc}", err=True)
                bad += 1
                continue
            for item in collected.manifests:
                click.echo(f"ok: {item.source}: seldondeployment/{item.name}")
            for line in collected.skipped:
                click.echo(line)
    if bad:
        sys.exit(1)


def _documents(file: str) -> list[Any]:
    # The spec package's own reader: YAML without date conversion, several documents, or JSON.
    from seldon_serving.spec.loading import parse_text

    text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
    return parse_text(text, "<stdin>" if file == "-" else file)


@click.command("convert")
@click.argument("file")
@click.option(
    "--to",
    "to",
    required=True,
    type=click.Choice(["v1alpha1", "v1alpha2", "v1alpha3", "v1"]),
    help="Target apiVersion.",
)
@click.option("--split", is_flag=True, help="v1alpha1 -> newer: one pod template per container.")
@output_option
@one_sentence
def convert_command(file: str, to: str, split: bool, output: str) -> None:
    """Rewrite a manifest for another SeldonDeployment apiVersion (componentSpec <-> componentSpecs)."""
    from seldon_serving.spec import ManifestError, convert

    converted = []
    for doc in _documents(file):
        try:
            converted.append(convert(doc, to, split=split))
        except ManifestError as exc:
            raise exc.located(source=file) from None
    if output == "json":
        single = (
            converted[0] if len(converted) == 1 else {"apiVersion": "v1", "kind": "List", "items": converted}
        )
        click.echo(dump(single, "json"), nl=False)
    else:
        click.echo("---\n".join(dump(doc, "yaml") for doc in converted), nl=False)


@click.command("generate")
@click.argument("prototype")
@click.argument("name")
@click.option("--image", default=None, help="serve-simple / outlier-detector: the model image.")
@click.option("--imageA", "--image-a", "image_a", default=None, help="abtest / mab: image of classifier-1.")
@click.option("--imageB", "--image-b", "image_b", default=None, help="abtest / mab: image of classifier-2.")
@click.option(
    "--mabImage", "--mab-image", "mab_image", default="seldonio/mab_epsilon_greedy:1.1", show_default=True
)
@click.option(
    "--router",
    default=None,
    metavar="NAME",
    help="mab: a built-in router instead of the --mabImage container: UCB1, UCB1_TUNED, "
    "EPSILON_GREEDY, THOMPSON_SAMPLING or LINUCB.",
)
@click.option(
    "--outlierDetectorImage",
    "--outlier-detector-image",
    "outlier_detector_image",
    default="seldonio/outlier_mahalanobis:0.3",
    show_default=True,
)
@click.option("--replicas", type=int, default=1, show_default=True)
@click.option("--endpoint", default="REST", show_default=True, help="REST or GRPC.")
@click.option("--endpointA", "--endpoint-a", "endpoint_a", default="REST", show_default=True)
@click.option("--endpointB", "--endpoint-b", "endpoint_b", default="REST", show_default=True)
@click.option("--pvcName", "--pvc-name", "pvc_name", default=None, help="Mount this PersistentVolumeClaim.")
@click.option("--imagePullSecret", "--image-pull-secret", "image_pull_secret", default=None)
@click.option("--oauthKey", "--oauth-key", "oauth_key", default="")
@click.option("--oauthSecret", "--oauth-secret", "oauth_secret", default="")
@click.option(
    "--apiVersion",
    "--api-version",
    "api_version",
    default=None,
    help="v1alpha2 or v1alpha1 [from --seldon-version].",
)
@click.option("--seldonVersion", "--seldon-version", "seldon_version", default="0.2.x", show_default=True)
@click.option("--namespace", default=None)
@output_option
@one_sentence
def generate_command(
    prototype: str, name: str, api_version: str | None, seldon_version: str, output: str, **options: Any
) -> None:
    """Write the manifest of one of the seed's prototypes (ks generate seldon-PROTOTYPE-VERSION NAME).

    PROTOTYPE: serve-simple, abtest, mab, outlier-detector (or seldon-mab-v1alpha2 style names).
    """
    from seldon_serving.spec import generate, seldon_version_to_api_version

    version = api_version or seldon_version_to_api_version(seldon_version)
    doc = generate(prototype, name, api_version=version, **options)
    click.echo(dump(doc, output), nl=False)
