"""The one error a bad manifest produces: a single sentence naming the file and the field path."""

from __future__ import annotations

from collections.abc import Iterable

from seldon_serving.protocol.errors import ServingError


def join_path(*parts: str | int) -> str:
    """Build a field path like ``spec.predictors[0].graph``: ints become ``[i]``, strings ``.key``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            out += f".{part}" if out else part
    return out


def loc_to_path(loc: Iterable[str | int]) -> str:
    return join_path(*loc)


class ManifestError(ServingError, ValueError):
    """A manifest that cannot be loaded, validated, converted or generated.

    `path` is the field path inside the SeldonDeployment (``spec.predictors[0].graph.type``), or
    "" when the problem is the document as a whole; `source` is the file name when known;
    `context` says which part of a file holding several deployments is meant ("document 2",
    "SeldonDeployment mymab", "items[1]"), and is None when the file holds just one.
    str(error) is one sentence: ``mab.yaml: spec.predictors[0].graph.type: 'X' is not one of ...``.
    """

    def __init__(
        self, path: str, reason: str, *, source: str | None = None, context: str | None = None
    ) -> None:
        self.path = path
        self.reason = reason
        self.source = source
        self.context = context
        super().__init__(self._sentence())

    def _sentence(self) -> str:
        where: list[str] = []
        if self.source and self.context:
            where.append(f"{self.source} ({self.context})")
        elif self.source or self.context:
            where.append(self.source or self.context or "")
        if self.path:
            where.append(self.path)
        return ": ".join([*where, self.reason])

    def located(self, *, source: str | None = None, context: str | None = None) -> ManifestError:
        """The same error, told which file (and which part of it) it came from."""
        return ManifestError(
            self.path,
            self.reason,
            source=source if source is not None else self.source,
            context=context if context is not None else self.context,
        )
