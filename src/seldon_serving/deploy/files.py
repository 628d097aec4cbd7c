"""Finding the SeldonDeployments in the files and directories a user names, and the code
their classes run.

The code of a deployment is what a fresh process would run for its MODEL_NAME classes: every
*.py file of the manifest's directory and of the packages in it (subdirectories with an
__init__.py, at any depth; `components.loader.code_files`).  A whole directory, not just each
class's own file: an edited helper module changes what the class does as much as an edited
class does.  Its fingerprint is a digest of those files' paths and contents (never their
modification times: a `touch`, or an editor saving the same text, is no change).  Left out:
code outside that directory (installed packages, namespace packages without an __init__.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seldon_serving.components.loader import code_digests
from seldon_serving.engine import experiments
from seldon_serving.engine.plan import NodePlan, check_classes, check_deployment, check_servers_installed
from seldon_serving.spec import ManifestError, SeldonDeployment, load_documents

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(slots=True)
class Manifest:
    manifest: dict[str, Any]  # one SeldonDeployment, as written
    base_dir: str  # where its MODEL_NAME classes live: the manifest's own directory
    source: str  # the file it came from ("-" for stdin)
    name: str
    classes: tuple[str, ...] = ()  # the MODEL_NAME of each node that runs a user class

    @property
    def namespace(self) -> str | None:
        return (self.manifest.get("metadata") or {}).get("namespace") or None

    def code(self) -> str | None:
        """The fingerprint of the code its classes run now (see `code_fingerprint`)."""
        return code_fingerprint(self.classes, self.base_dir)


@dataclass(slots=True)
class Collected:
    manifests: list[Manifest] = field(default_factory=list)
    skipped: list[str] = field(
        default_factory=list
    )  # "<file>: <kind> <name>: not a SeldonDeployment, skipped"


def manifest_files(paths: list[str]) -> list[Path]:
    """The files to read: each file as given, every *.yaml/*.yml/*.json of each directory (sorted)."""
    files: list[Path] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MANIFEST_SUFFIXES)
            if not found:
                raise ManifestError("", "no *.yaml, *.yml or *.json files in this directory", source=given)
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            raise ManifestError("", "no such file or directory", source=given)
    return files


def collect(
    paths: list[str],
    *,
    stdin_text: str | None = None,
    find_classes: bool = False,
    servers_installed: bool = False,
) -> Collected:
    """Every SeldonDeployment in `paths` ("-" reads `stdin_text`), each checked (`check_deployment`);
    with `find_classes`, also that every MODEL_NAME class is in the manifest's directory (read
    from the files, never run); with `servers_installed`, that the framework of every model
    server they use is installed here (what serving them needs, not what validating them does).

    Raises ManifestError naming the file and the field of the first problem found.
    """
    out = Collected()
    sources: list[tuple[str | bytes, str, str]] = []  # (content or path, name, base_dir)
    for given in paths:
        if given == "-":
            sources.append(((stdin_text or "").encode(), "<stdin>", str(Path.cwd())))
            continue
        for file in manifest_files([given]):
            sources.append((str(file), str(file), str(file.resolve().parent)))
    for content, name, base_dir in sources:
        loaded = load_documents(content, filename=name)
        for line in loaded.skipped:
            out.skipped.append(f"{name}: {line}")
        for sdep in loaded.deployments:
            plans = check_deployment(sdep)
            check_experiment_annotations(sdep)
            if servers_installed:
                check_servers_installed(sdep, plans)
            if find_classes:
                check_classes(sdep, Path(base_dir))
            deployment = sdep.metadata.name or sdep.spec.name or ""
            out.manifests.append(Manifest(sdep.to_dict(), base_dir, name, deployment, user_classes(plans)))
    return out


def check_experiment_annotations(sdep: SeldonDeployment) -> None:
    """The A/B statistics' annotations (`seldon.io/experiment-*`) are usable numbers, as
    `seldon apply` checks them: ManifestError naming the file and the annotations otherwise."""
    try:
        experiments.config_from(sdep.metadata.annotations, sdep.spec.annotations)
    except experiments.ExperimentConfigError as exc:
        where = (
            "metadata.annotations"
            if any(key.startswith("seldon.io/experiment-") for key in sdep.metadata.annotations or {})
            else "spec.annotations"
        )
        raise ManifestError(where, str(exc)).located(source=sdep.source, context=sdep.context) from None


def user_classes(plans: Iterable[NodePlan]) -> tuple[str, ...]:
    """The MODEL_NAME of every node of these predictor plans that runs a user class (a model
    server the user registered included: its module may be beside the manifest; ours are not)."""
    return tuple(
        node.model_name
        for plan in plans
        for node in plan.walk()
        if node.model_name and (node.server is None or not node.server.builtin)
    )


def code_fingerprint(classes: Iterable[str], base_dir: str | Path | None) -> str | None:
    """A digest of the code a deployment's classes run (the module docstring says which files);
    None when it runs no class of the user's, so edits to files beside it never touch it."""
    if base_dir is None or not tuple(classes):
        return None
    directory = Path(base_dir)
    digest = hashlib.sha256()
    for path, content in sorted(code_digests(directory).items()):
        digest.update(f"{path.relative_to(directory).as_posix()}\0{content}\n".encode())
    return digest.hexdigest()[:32]


def check_code(base_dir: str | Path, *, source: str | None = None) -> None:
    """Compile (never run) every code file of `base_dir`: ManifestError naming the file and
    line of the first syntax error, so a broken edit can be refused before anything rebuilds."""
    for path in sorted(code_digests(base_dir)):
        try:
            compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            where = f"{path}, line {exc.lineno}" if exc.lineno else str(path)
            raise ManifestError("", f"{where}: {exc.msg}", source=source) from None
        except (OSError, ValueError) as exc:  # unreadable, or a null byte in the source
            raise ManifestError("", f"{path} cannot be read: {exc}", source=source) from None
