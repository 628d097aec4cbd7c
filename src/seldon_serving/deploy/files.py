"""Finding the SeldonDeployments in the files and directories a user names."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from seldon_serving.engine.plan import check_classes, check_deployment
from seldon_serving.spec import ManifestError, load_documents

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(slots=True)
class Manifest:
    manifest: dict[str, Any]  # one SeldonDeployment, as written
    base_dir: str  # where its MODEL_NAME classes live: the manifest's own directory
    source: str  # the file it came from ("-" for stdin)
    name: str


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


def collect(paths: list[str], *, stdin_text: str | None = None, find_classes: bool = False) -> Collected:
    """Every SeldonDeployment in `paths` ("-" reads `stdin_text`), each checked (`check_deployment`);
    with `find_classes`, also that every MODEL_NAME class is in the manifest's directory (read
    from the files, never run).

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
            check_deployment(sdep)
            if find_classes:
                check_classes(sdep, Path(base_dir))
            out.manifests.append(
                Manifest(sdep.to_dict(), base_dir, name, sdep.metadata.name or sdep.spec.name or "")
            )
    return out
