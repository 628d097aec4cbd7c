"""`seldon apply`, `seldon get`, `seldon delete`: kubectl's verbs against a running gateway."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from seldon_serving.cli.admin_client import AdminClient
from seldon_serving.cli.errors import CliError, one_sentence
from seldon_serving.cli.options import pem_option, register_servers, server_config_option

DEFAULT_NAMESPACE = "default"


def server_option(fn: Any) -> Any:
    """--server, --admin-token-file, --ca, --cert, --key: where the admin API is and how to reach it."""
    options = [
        click.option(
            "--server",
            default=None,
            help="The admin address of `seldon serve` (its --admin-port) [$SELDON_SERVER or "
            "http://127.0.0.1:8004].",
        ),
        click.option(
            "--admin-token-file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            envvar="SELDON_ADMIN_TOKEN_FILE",
            help="A file holding the admin token of a server started with --admin-token-file "
            "[$SELDON_ADMIN_TOKEN_FILE; or the token itself in $SELDON_ADMIN_TOKEN].",
        ),
        pem_option("--ca", "SELDON_CA", "Verify an https --server with this CA certificate (PEM)"),
        pem_option(
            "--cert", "SELDON_CLIENT_CERT", "A client certificate (PEM) for an https --server with mutual TLS"
        ),
        pem_option("--key", "SELDON_CLIENT_KEY", "The private key of --cert (PEM)"),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


namespace_option = click.option(
    "-n", "--namespace", default=None, help="Namespace [the manifest's, else default]."
)


def _client_cert(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    if (cert is None) != (key is None):
        raise CliError("--cert and --key go together: give both, or neither")
    return (cert, key) if cert is not None and key is not None else None


def _read_files(files: tuple[str, ...]) -> Any:
    from seldon_serving.deploy.files import collect

    stdin_text = sys.stdin.read() if "-" in files else None
    collected = collect(list(files), stdin_text=stdin_text)
    for line in collected.skipped:
        click.echo(line, err=True)
    if not collected.manifests:
        raise CliError(f"no SeldonDeployment in {', '.join(files)}")
    return collected.manifests


@click.command("apply")
@click.option(
    "-f", "--filename", "files", multiple=True, required=True, help="Manifest file, directory or -."
)
@namespace_option
@server_option
@server_config_option  # the gateway's own (`seldon serve --server-config`): its servers check here too
@one_sentence
def apply_command(
    files: tuple[str, ...],
    namespace: str | None,
    server: str | None,
    admin_token_file: Path | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
    server_config: Path | None,
) -> None:
    """Create or update the SeldonDeployments of FILE in a running `seldon serve`."""
    register_servers((), server_config)
    client = AdminClient(server, admin_token_file, ca, _client_cert(cert, key))
    failed = []
    for item in _read_files(files):
        body = {"manifest": item.manifest, "base_dir": item.base_dir, "source": item.source}
        if namespace:
            body["namespace"] = namespace
        answer = client.call("PUT", "/admin/deployments", body)
        click.echo(f"seldondeployment/{item.name} {answer['result']}")
        status = answer["deployment"]["manifest"].get("status") or {}
        if status.get("state") == "Failed":
            failed.append(f"seldondeployment/{item.name} failed: {status.get('description', '')}")
        elif status.get("state") == "NotReady":
            why = status.get("description")
            click.echo(f"warning: seldondeployment/{item.name} is not ready: {why}", err=True)
    for line in failed:
        click.echo(f"error: {line}", err=True)
    if failed:
        sys.exit(1)


@click.command("delete")
@click.argument("names", nargs=-1)
@click.option("-f", "--filename", "files", multiple=True, help="Delete the deployments of this manifest.")
@namespace_option
@server_option
@one_sentence
def delete_command(
    names: tuple[str, ...],
    files: tuple[str, ...],
    namespace: str | None,
    server: str | None,
    admin_token_file: Path | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """Delete deployments by NAME (or those of a manifest) from a running `seldon serve`."""
    targets = [(namespace or DEFAULT_NAMESPACE, name) for name in names]
    if files:
        for item in _read_files(files):
            item_ns = (item.manifest.get("metadata") or {}).get("namespace")
            targets.append((namespace or item_ns or DEFAULT_NAMESPACE, item.name))
    if not targets:
        raise CliError("name a deployment to delete (or give -f FILE)")
    client = AdminClient(server, admin_token_file, ca, _client_cert(cert, key))
    for ns, name in targets:
        client.call("DELETE", f"/admin/deployments/{ns}/{name}")
        click.echo(f'seldondeployment "{name}" deleted')


@click.command("get")
@click.argument("name", required=False)
@click.option("-o", "--output", type=click.Choice(["yaml", "json", "wide"]), default=None)
@namespace_option
@click.option("-A", "--all-namespaces", is_flag=True, help="Every namespace.")
@server_option
@one_sentence
def get_command(
    name: str | None,
    output: str | None,
    namespace: str | None,
    all_namespaces: bool,
    server: str | None,
    admin_token_file: Path | None,
    ca: Path | None,
    cert: Path | None,
    key: Path | None,
) -> None:
    """List deployments (or show one): NAME STATE AGE PREDICTORS; -o wide adds how each node runs."""
    client = AdminClient(server, admin_token_file, ca, _client_cert(cert, key))
    ns = namespace or DEFAULT_NAMESPACE
    if name:
        items = [client.call("GET", f"/admin/deployments/{ns}/{name}")]
    else:
        items = client.call("GET", "/admin/deployments")["items"]
        if not all_namespaces:
            items = [i for i in items if i["manifest"]["metadata"].get("namespace") == ns]
    if output in ("yaml", "json"):
        manifests = [i["manifest"] for i in items]
        doc = manifests[0] if name else {"apiVersion": "v1", "kind": "List", "items": manifests}
        click.echo(dump(doc, output), nl=False)
        return
    if not items:
        where = "any namespace" if all_namespaces else f"namespace '{ns}'"
        click.echo(f"No deployments found in {where}.", err=True)
        return
    click.echo(table(items, wide=output == "wide", namespaces=all_namespaces), nl=False)
    if output == "wide":
        click.echo(node_states(items), nl=False)
        click.echo(experiment_tables(items), nl=False)


def node_states(items: list[dict[str, Any]]) -> str:
    """What the stateful nodes have learnt: each router's branches, each detector's observations."""
    lines: list[str] = []
    for item in items:
        name = item["manifest"]["metadata"]["name"]
        for predictor in item.get("predictors") or []:
            for node in predictor["nodes"]:
                state = node.get("state")
                if not isinstance(state, dict):
                    continue
                where = f"{name}/{node['name']}"
                if isinstance(state.get("branches"), list):
                    lines.append(f"\n{where}: router, best branch {state.get('best_branch')}")
                    lines.append(f"  {'BRANCH':<8}{'NAME':<12}{'TRIES':>8}{'SUCCESSES':>12}{'VALUE':>9}")
                    for b in state["branches"]:
                        value = b.get("value", b.get("posterior_mean", 0.0))
                        lines.append(
                            f"  {b['branch']:<8}{b.get('name') or '-'!s:<12}{b['tries']:>8g}"
                            f"{b['successes']:>12.6g}{value:>9.4f}"
                        )
                elif "observations" in state:
                    lines.append(
                        f"\n{where}: detector, {state['observations']} observations, "
                        f"{state.get('nb_outliers', 0)} outliers (threshold {state.get('threshold')})"
                    )
                elif "error" in state:
                    lines.append(f"\n{where}: state unavailable: {state['error']}")
    return "\n".join(lines) + ("\n" if lines else "")


def experiment_tables(items: list[dict[str, Any]]) -> str:
    """status.experiments as tables: per branch of each router and traffic split, what it served
    and earned, and whether the leader's lead is significant yet."""
    lines: list[str] = []
    for item in items:
        name = item["manifest"]["metadata"]["name"]
        for entry in (item["manifest"].get("status") or {}).get("experiments") or []:
            if entry["kind"] == "traffic":
                what = "the traffic split between predictors"
            else:
                what = f"router {entry['node']} (predictor {entry['predictor']})"
            lines.append(
                f"\n{name}: A/B statistics of {what}; {entry['test']}, alpha {entry['alpha']:g}, "
                f"power {entry['power']:g}"
            )
            header = ("BRANCH", "REQUESTS", "ERRORS", "P50_MS", "P99_MS", "FEEDBACK", "REWARD", "95% CI")
            rows = [header]
            for b in entry["branches"]:
                ci = b["reward_ci95"]
                rows.append(
                    (
                        b["branch"],
                        str(b["requests"]),
                        str(b["errors"]),
                        _number(b["latency_p50_ms"], ".3g"),
                        _number(b["latency_p99_ms"], ".3g"),
                        str(b["feedback"]),
                        _number(b["reward_mean"], ".4f"),
                        f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "-",
                    )
                )
            widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
            for row in rows:
                cells = [
                    row[0].ljust(widths[0]),
                    *(c.rjust(w) for c, w in zip(row[1:-1], widths[1:-1], strict=True)),
                ]
                lines.append("  " + "  ".join([*cells, row[-1]]).rstrip())
            lines.extend(f"  {_comparison(c, entry['power'])}" for c in entry["comparisons"])
            if entry.get("unattributed_feedback"):
                lines.append(
                    f"  {entry['unattributed_feedback']} feedback not counted: the response did not tell "
                    "which predictor answered"
                )
            if entry["winner"]:
                lines.append(f"  winner: {entry['winner']}")
            elif not entry["comparisons"]:
                lines.append("  no comparison yet: it needs feedback on at least two branches")
    return "\n".join(lines) + ("\n" if lines else "")


def _number(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def _comparison(c: dict[str, Any], power: float) -> str:
    head = f"{c['leader']} leads {c['branch']} by {c['effect']:.4g}"
    if c["p_value"] is None:
        return f"{head}: no test yet (every reward so far is the same, or too few)"
    verdict = "significant" if c["significant"] else "not significant"
    line = f"{head} (p = {c['p_value']:.3g}): {verdict} at {c['alpha']:.3g}"
    if not c["significant"] and c["remaining_feedback"] is not None:
        line += f"; about {c['remaining_feedback']} more feedback for {power:.0%} power"
    return line


def dump(doc: Any, output: str) -> str:
    if output == "json":
        return json.dumps(doc, indent=2) + "\n"
    import yaml

    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)


def age(created: float, now: float | None = None) -> str:
    """kubectl's AGE: 45s, 12m, 5h, 3d."""
    seconds = max(0, int((now or time.time()) - created))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _predictors(item: dict[str, Any]) -> str:
    status = item["manifest"].get("status") or {}
    entries = status.get("predictorStatus") or []
    if entries:
        return ",".join(
            f"{p['name']}({p.get('replicasAvailable', 0)}/{p.get('replicas', 0)})" for p in entries
        )
    predictors = (item["manifest"].get("spec") or {}).get("predictors") or []
    return ",".join(str(p.get("name", "")) for p in predictors)


def _nodes(item: dict[str, Any]) -> str:
    parts = []
    for predictor in item.get("predictors") or []:
        runs = "; ".join(f"{n['name']}={n['runs']}" for n in predictor["nodes"])
        parts.append(f"{predictor['predictor']}: {runs}")
    if parts:
        return " | ".join(parts)
    status = item["manifest"].get("status") or {}
    return status.get("description") or "-"


def table(items: list[dict[str, Any]], *, wide: bool, namespaces: bool) -> str:
    header = ["NAME", "STATE", "AGE", "PREDICTORS"]
    if namespaces:
        header.insert(0, "NAMESPACE")
    if wide:
        header.append("NODES")
    rows = [header]
    for item in items:
        manifest = item["manifest"]
        status = manifest.get("status") or {}
        row = [
            manifest["metadata"]["name"],
            status.get("state", "Creating"),
            age(item["created"]),
            _predictors(item),
        ]
        if namespaces:
            row.insert(0, manifest["metadata"].get("namespace", ""))
        if wide:
            row.append(_nodes(item))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = ["   ".join([*(c.ljust(w) for c, w in zip(r[:-1], widths, strict=True)), r[-1]]) for r in rows]
    return "\n".join(line.rstrip() for line in lines) + "\n"
