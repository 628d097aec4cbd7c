"""`seldon admin-token FILE`: a new admin token for `seldon serve --admin-token-file`."""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import click

from seldon_serving.cli.errors import CliError, one_sentence


@click.command("admin-token")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@one_sentence
def admin_token_command(file: Path, force: bool) -> None:
    """Write a new random admin token to FILE (mode 600) and print `sha256:<hex>` of it.

    Start the server with `--admin-token-file FILE`, and give `seldon apply/get/delete` the same
    FILE (or the token in $SELDON_ADMIN_TOKEN).  A server that should not hold the secret can
    be given a file holding only the printed `sha256:` line instead.
    """
    token = secrets.token_urlsafe(32)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    try:
        # Created with mode 600: the token is never readable by others, not even for a moment.
        descriptor = os.open(file, flags, 0o600)
    except FileExistsError:
        raise CliError(f"{file} exists: give --force to replace its token, or another FILE") from None
    except OSError as exc:
        raise CliError(f"cannot write {file}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file replaced with --force keeps no wider mode
        out.write(token + "\n")
    click.echo(f"sha256:{hashlib.sha256(token.encode()).hexdigest()}")
    click.echo(f"admin token written to {file} (mode 600)", err=True)
