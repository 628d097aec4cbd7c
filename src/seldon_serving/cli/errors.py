"""The CLI's one exit path for failures: a known error becomes one sentence on stderr
and an exit code, never a stack trace."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


class CliError(Exception):
    """A failure the user can fix; the message is the whole explanation."""


def _known_errors() -> tuple[type[BaseException], ...]:
    from seldon_serving.components.loader import ComponentLoadError
    from seldon_serving.engine.compile import CompileError
    from seldon_serving.protocol.errors import SeldonError
    from seldon_serving.spec.errors import ManifestError

    known: list[type[BaseException]] = [
        CliError,
        SeldonError,
        ComponentLoadError,
        ManifestError,
        CompileError,
        OSError,
        ValueError,
    ]
    return tuple(known)


def one_sentence(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except click.exceptions.Exit:
            raise
        except click.ClickException:
            raise
        except KeyboardInterrupt:
            sys.exit(130)
        except _known_errors() as exc:
            message = str(exc) or type(exc).__name__
            if isinstance(exc, OSError) and exc.strerror:
                message = f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
            click.echo(f"error: {message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
