"""The CLI's one exit path for failures.

A `ServingError` (the package's one error family) is something the user can fix: its
sentence goes to stderr and the process exits with its `exit_code`.  Anything else is a bug
of ours: one line says so, `--debug` (or SELDON_DEBUG=1) shows its traceback.
"""

from __future__ import annotations

import functools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import click

from seldon_serving.protocol.errors import ServingError

F = TypeVar("F", bound=Callable[..., Any])

INTERNAL_ERROR = 70  # sysexits' EX_SOFTWARE: the program itself failed


class CliError(ServingError):
    """A failure the user can fix; the message is the whole explanation."""


def debugging() -> bool:
    """Whether --debug was given (to `seldon` or to `seldon-core-microservice`) or SELDON_DEBUG is set."""
    if os.environ.get("SELDON_DEBUG", "").lower() in ("1", "true", "yes", "on"):
        return True
    context = click.get_current_context(silent=True)
    return bool(context is not None and context.find_root().params.get("debug"))


def one_sentence(fn: F) -> F:
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException):
            raise
        except KeyboardInterrupt:
            sys.exit(130)
        except ServingError as exc:
            if debugging():
                traceback.print_exc()
            click.echo(f"error: {str(exc) or type(exc).__name__}", err=True)
            sys.exit(exc.exit_code)
        except Exception as exc:
            if debugging():
                traceback.print_exc()
                sys.exit(INTERNAL_ERROR)
            click.echo(
                f"error: unexpected {type(exc).__name__}: {exc} (a bug in Seldon Serving; "
                "run again with --debug to see where it happened)",
                err=True,
            )
            sys.exit(INTERNAL_ERROR)

    return wrapper  # type: ignore[return-value]
