"""The ``rlspoof`` command line: a thin typer layer over the library.

Commands parse arguments, call one library function, and render results with rich.

Exit codes, the same for every command (``main`` is the one place that enforces them):

* ``0`` success;
* ``1`` a command's own alert: ``drift`` found drift, ``detect`` could score none of its inputs;
* ``2`` bad input (a file, a line of it, an option, a recipe field): one line that names it,
  never a traceback. Every such error is an ``RlspoofError``; typer's own usage errors are 2 too.

Anything else is a bug and keeps its traceback, so that it stays visible.
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


EXIT_OK, EXIT_ALERT, EXIT_INPUT_ERROR = 0, 1, 2


def main() -> None:
    try:
        app()
    except RlspoofError as exc:
        from rlspoof.cli.console import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(EXIT_INPUT_ERROR)
    finally:
        close_process_group()


def close_process_group() -> None:
    """A distributed run (torchrun, accelerate launch) leaves its gloo/NCCL process group open;
    destroyed by the interpreter at exit instead, its threads are sometimes still joinable and
    the process aborts ("terminate called without an active exception", exit -6) after the
    work is done. (Seen in about one two-rank CPU run in three.)"""
    torch = sys.modules.get("torch")
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
