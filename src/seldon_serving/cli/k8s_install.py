"""`seldon k8s install`: the core install, printed for `kubectl apply -f -`."""

from __future__ import annotations

import click

from seldon_serving import __version__
from seldon_serving.cli.errors import one_sentence

# Kept in step with deploy.k8s.install (imported lazily: the CLI starts without pydantic & co).
_SERVICE_TYPES = click.Choice(["NodePort", "LoadBalancer", "ClusterIP"])
_INT32 = click.IntRange(min=1, max=2**31 - 1)


@click.command("install")
@click.option("--name", default="seldon", show_default=True, help="Prefix of every object's name.")
@click.option(
    "-n", "--namespace", default="default", show_default=True, help="Where the operator and Redis run."
)
@click.option(
    "--single-namespace/--cluster-wide",
    default=True,
    show_default=True,
    help="Serve SeldonDeployments of --namespace only (a Role) or of every namespace (a ClusterRole).",
)
@click.option(
    "--with-rbac/--no-rbac",
    default=True,
    show_default=True,
    help="Create the ServiceAccounts and their Roles (without: grant them yourself).",
)
@click.option("--with-apife", is_flag=True, help="Add the OAuth API front end (seldon serve --oauth).")
@click.option(
    "--apife-service-type",
    type=_SERVICE_TYPES,
    default="NodePort",
    show_default=True,
    help="Type of the front end's Service.",
)
@click.option("--with-ambassador", is_flag=True, help="Add Ambassador, routing /seldon/... to deployments.")
@click.option(
    "--ambassador-service-type",
    type=_SERVICE_TYPES,
    default="NodePort",
    show_default=True,
    help="Type of Ambassador's Service.",
)
@click.option("--seldon-version", default=__version__, show_default=True, help="Tag of the runtime image.")
@click.option("--registry", default=None, help="Registry of the runtime image, e.g. gcr.io [none].")
@click.option(
    "--repository", default="seldonio-serving", show_default=True, help="Repository of the runtime image."
)
@click.option(
    "--image",
    default=None,
    help="The runtime image as a whole [<registry>/<repository>/seldon-serving:<seldon-version>].",
)
@click.option(
    "--engine-user",
    type=_INT32,
    default=8888,
    show_default=True,
    help="User id the engines (and the operator and front end) run as.",
)
@click.option(
    "--engine-service-account",
    default=None,
    help="ServiceAccount of the pods the engines run in [the namespace's default].",
)
@click.option(
    "--grpc-max-message-size",
    type=_INT32,
    default=4194304,
    show_default=True,
    help="Largest gRPC message in bytes, for engines and the front end.",
)
@click.option("--redis-image", default=None, help="Redis image [redis:7.2].")
@click.option(
    "--ambassador-image", default=None, help="Ambassador image [quay.io/datawire/ambassador:0.40.2]."
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="A YAML stream, or one JSON `kind: List`.",
)
@one_sentence
def install_command(
    name: str,
    namespace: str,
    single_namespace: bool,
    with_rbac: bool,
    with_apife: bool,
    apife_service_type: str,
    with_ambassador: bool,
    ambassador_service_type: str,
    seldon_version: str,
    registry: str | None,
    repository: str,
    image: str | None,
    engine_user: int,
    engine_service_account: str | None,
    grpc_max_message_size: int,
    redis_image: str | None,
    ambassador_image: str | None,
    output: str,
) -> None:
    """Print the core install as YAML for `kubectl apply -f -`: the SeldonDeployment CRD, the
    operator with its ServiceAccount, RBAC and image map, and Redis (plus, if asked, the OAuth
    front end and Ambassador). This is Kubeflow's `ks generate seldon seldon`."""
    import json

    from seldon_serving.deploy.k8s import install
    from seldon_serving.deploy.k8s.render import to_yaml

    options = install.InstallOptions(
        name=name,
        namespace=namespace,
        rbac=with_rbac,
        single_namespace=single_namespace,
        apife=with_apife,
        apife_service_type=apife_service_type,
        ambassador=with_ambassador,
        ambassador_service_type=ambassador_service_type,
        seldon_version=seldon_version,
        registry=registry or None,
        repository=repository,
        image=image or None,
        engine_user=engine_user,
        engine_service_account=engine_service_account,
        grpc_max_message_size=grpc_max_message_size,
        redis_image=redis_image or install.DEFAULT_REDIS_IMAGE,
        ambassador_image=ambassador_image or install.DEFAULT_AMBASSADOR_IMAGE,
    )
    objects = install.install_objects(options)
    if output == "json":
        click.echo(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2))
    else:
        click.echo(to_yaml(objects), nl=False)
