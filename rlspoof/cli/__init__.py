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

import logging
import os
import sys
from typing import NoReturn

import typer

from rlspoof.cli.calibrate import calibrate, fuse
from rlspoof.cli.compare import compare
from rlspoof.cli.convert import convert_app
from rlspoof.cli.data import data_app
from rlspoof.cli.drift import drift
from rlspoof.cli.embed import embed
from rlspoof.cli.evaluate import detect, evaluate
from rlspoof.cli.export import export
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
app.add_typer(convert_app, name="convert")
app.command()(pretrain)
app.command()(train)
app.command(name="eval")(evaluate)
app.command()(detect)
app.command()(compare)
app.command()(drift)
app.command()(calibrate)
app.command()(fuse)
app.command()(export)
app.command()(embed)
app.command(name="accelerate-config")(accelerate_config)


EXIT_OK, EXIT_ALERT, EXIT_INPUT_ERROR = 0, 1, 2


def main() -> None:
    code: int | str | None = EXIT_OK
    try:
        app()
    except SystemExit as exc:  # typer's standalone mode ends every command this way
        code = exc.code
    except RlspoofError as exc:
        from rlspoof.cli.console import err_console

        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        code = EXIT_INPUT_ERROR
    except BaseException:  # a bug: keep its traceback, but leave no process group behind
        close_process_group()
        raise
    exit_process(code)


def exit_process(code: int | str | None) -> NoReturn:
    """Exit with ``code``; after a distributed run, without the interpreter's teardown.

    A distributed run (torchrun, accelerate launch) sometimes aborts after its work is saved:
    libtorch's static destructors meet a gloo thread that is still joinable ("terminate called
    without an active exception", exit -6). ``destroy_process_group`` first made it rarer, not
    rare enough: the two-rank CPU launch still aborted in 2 of 60 runs here (and once in CI). So a
    rank that held a process group flushes what Python would flush and leaves by ``os._exit``,
    which runs no C++ destructors."""
    if not close_process_group():
        sys.exit(code)
    if isinstance(code, str):  # sys.exit's convention: print the message, exit 1
        print(code, file=sys.stderr)
        code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or EXIT_OK)


def close_process_group() -> bool:
    """Destroy the process group a distributed run left open; True when there was one."""
    torch = sys.modules.get("torch")
    dist = torch.distributed if torch is not None else None
    if dist is None or not dist.is_available() or not dist.is_initialized():
        return False
    dist.destroy_process_group()
    return True
