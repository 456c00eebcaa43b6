"""`tollgate master-key generate FILE`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from gateway.cli.common import CliError
from gateway.cli.help import HelpWithExamples
from gateway.credentials.crypto import MasterKey


def register(commands: Any) -> None:
    master = commands.add_parser(
        "master-key",
        help="generate the master key that encrypts credentials",
        description="The master key wraps every stored provider credential.",
    )
    actions = master.add_subparsers(dest="action", metavar="ACTION", required=True)
    generate = actions.add_parser(
        "generate",
        help="write a new random master key to FILE (mode 0600)",
        description="Write 32 random bytes, base64-encoded, to FILE with mode 0600. Refuses to overwrite: "
        "losing the master key makes every stored credential unreadable. Rotating a master key (re-"
        "encrypting the stored credentials under a new one) is not supported yet.",
        epilog="example:\n  tollgate master-key generate data/master.key",
        formatter_class=HelpWithExamples,
    )
    generate.add_argument("file", metavar="FILE", type=Path, help="where to write the key (must not exist)")
    generate.set_defaults(handler=_generate)


def _generate(args: argparse.Namespace) -> int:
    path: Path = args.file
    if path.is_dir():
        raise CliError(f"{path} is a directory; name the file to write, e.g. {path / 'master.key'}")
    key, text = MasterKey.generate()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        if Path(exc.filename or path) != path:  # a file where a folder of the path should be
            raise CliError(
                f"cannot write the master key to {path}: {exc.filename} is not a directory"
            ) from None
        raise CliError(f"{path} exists already; refusing to overwrite a master key") from None
    except NotADirectoryError:
        folder = next(parent for parent in path.parents if parent.exists())
        raise CliError(f"cannot write the master key to {path}: {folder} is not a directory") from None
    except OSError as exc:
        raise CliError(f"cannot write the master key to {path}: {exc.strerror}") from None
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(text + "\n")
    print(f"wrote master key {key.id} to {path}")
    return 0
