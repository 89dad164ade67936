"""The ``rlspoof`` command line: a thin typer layer over the library.

Commands parse arguments, call one library function, and render results with rich. Errors
caused by user input (``RlspoofError``) are printed as one line and exit with code 2, never as
a traceback.
"""

from __future__ import annotations

import sys

import typer

from rlspoof.cli.compare import compare
from rlspoof.cli.data import data_app
from rlspoof.cli.drift import drift
from rlspoof.cli.embed import embed
from rlspoof.cli.evaluate import detect, evaluate
from rlspoof.cli.launch import accelerate_config
from rlspoof.cli.pretrain import pretrain
from rlspoof.cli.train import train
from rlspoof.errors import RlspoofError

app = typer.Typer(
    name="rlspoof",
    help="Fine-tune speech deepfake detectors with RL (GRPO) and compare with SFT.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
app.command()(pretrain)
app.command()(train)
app.command(name="eval")(evaluate)
app.command()(detect)
app.command()(compare)
app.command()(drift)
app.command()(embed)
app.command(name="accelerate-config")(accelerate_config)


def main() -> None:
    try:
        app()
    except RlspoofError as exc:
        from rlspoof.cli.console import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
