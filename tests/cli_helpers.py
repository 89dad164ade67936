"""Running the CLI in-process as ``main()`` would (imported as a plain module: pytest puts tests/ on sys.path)."""

from __future__ import annotations

from typer.testing import CliRunner

from rlspoof.cli import app
from rlspoof.errors import RlspoofError

runner = CliRunner()


def run_cli(args: list) -> tuple[int, str]:
    """Exit code and output as ``main()`` gives them: an ``RlspoofError`` is one line, exit 2;
    any other exception is a bug and fails the test."""
    result = runner.invoke(app, [str(a) for a in args])
    if isinstance(result.exception, RlspoofError):
        message = str(result.exception)
        assert "\n" not in message, message
        return 2, message
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.output
