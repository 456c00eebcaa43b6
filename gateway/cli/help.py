"""How the commands' `--help` reads: descriptions wrapped to the terminal, examples kept line for line."""

from __future__ import annotations

import argparse


class HelpWithExamples(argparse.HelpFormatter):
    """Wraps a description as argparse does; an epilog that starts with `example` keeps its lines."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)
