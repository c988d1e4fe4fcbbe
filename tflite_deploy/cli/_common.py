"""What every command module shares: the error wrapper, the console, and the options defined once.

A :class:`~tflite_deploy.errors.UserError` becomes ``error: MESSAGE`` on stderr and its exit code;
Ctrl-C becomes ``interrupted`` and exit 130; neither shows a traceback. An error about an API
parameter (``UserError.param``) is shown with the running command's own flag for it.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Any, Callable, List, Optional

import typer
from rich.console import Console

from tflite_deploy.errors import UserError

# Off a terminal (piped, CI logs, cron) there is no width to respect: wide lines beat wrapped tables.
LOG_WIDTH = 160


def console(stderr: bool = False) -> Console:
    """The console commands print to: the terminal's width, else ``$COLUMNS``, else :data:`LOG_WIDTH`."""
    c = Console(stderr=stderr)
    if c.is_terminal:
        return c
    columns = os.environ.get("COLUMNS", "")
    return Console(stderr=stderr, width=int(columns) if columns.isdigit() and int(columns) > 0 else LOG_WIDTH)


def flag_for(param: str) -> Optional[str]:
    """The running command's option for the API parameter ``param`` (``runs`` -> ``--runs``), if it has one."""
    try:  # Typer 0.2x runs its commands on its own copy of click; older ones on click itself
        from typer._click.globals import get_current_context
    except ImportError:
        from click import get_current_context

    ctx = get_current_context(silent=True)
    if ctx is None:
        return None
    spelled = "--" + param.replace("_", "-")
    for p in ctx.command.params:
        longs = [o for o in p.opts if o.startswith("--")]
        if longs and (p.name == param or spelled in p.opts):
            return spelled if spelled in p.opts else longs[0]
    return None


def shown(error: UserError) -> str:
    """The message as the command line shows it: naming the flag where the API names its parameter."""
    flag = flag_for(error.param) if error.param else None
    return error.naming(flag) if flag else str(error)


def user_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Every command runs under this: a UserError is its one-paragraph message and exit code, Ctrl-C exits 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except UserError as e:
            from rich.markup import escape  # a message may hold brackets: [SERIAL], a shape (1, [2])

            console(stderr=True).print(f"[bold red]error:[/] {escape(shown(e))}", highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            console(stderr=True).print("interrupted", highlight=False)
            raise typer.Exit(130) from None

    return wrapper


def progress_bars(disable: bool):  # type: ignore[no-untyped-def]
    """Progress on stderr while a command works (none with ``--json``: its stdout is one document)."""
    from tflite_deploy.render.verbs import progress_bars as bars

    return bars(console(stderr=True), disable=disable)


def store_target(store: Optional[str], no_store: bool) -> Any:
    """What the API's ``store=`` gets: None (not recorded), the store named, or True (the default one)."""
    return None if no_store else (store or True)


def quiet_python_warnings() -> None:
    """TensorFlow and TF-MOT emit deprecation warnings a user can do nothing about."""
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(tensorflow|tf_keras|keras)")


# ------------------------------------------------------------------------ options, defined once
STORE_HELP = ("Results store: a file path (SQLite) or a URL such as postgresql+psycopg://user@host/db. "
              "Default $TFLITE_DEPLOY_STORE or ./tflite-deploy.db.")
# The store commands read (history, compare, report, farm): the environment variable is the default.
StoreFrom = Annotated[Optional[str], typer.Option("--store", envvar="TFLITE_DEPLOY_STORE", help=STORE_HELP)]
# The measuring commands (convert, eval, bench, parse-log) record there (the API reads the variable).
StoreTo = Annotated[Optional[str], typer.Option("--store", help="Record results in this store. " + STORE_HELP)]
RunTag = Annotated[Optional[str], typer.Option("--tag", help="Tag of this run in the store (e.g. nightly; a farm "
                                                           "run's default is its plan's tag).")]
NoStore = Annotated[bool, typer.Option("--no-store", help="Do not record the results.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the JSON envelope instead of tables.")]

Unsafe = Annotated[bool, typer.Option("--unsafe-deserialization", help="Load Lambda layers (runs code in the file).")]
Force = Annotated[bool, typer.Option("--force", help="Compare variants made from different source models anyway.")]
RecipeFiles = Annotated[List[Path], typer.Option("--recipes-file", "-f", help="YAML/TOML file(s) of user recipes.")]
MinEffect = Annotated[float, typer.Option("--min-effect", help="Smallest latency change worth a verdict "
                                                               "(0.05 = 5%).")]
AdbServer = Annotated[Optional[str], typer.Option("--adb-server", help="HOST:PORT of a remote adb server (a device farm) that has the devices.")]

# Preprocessing options shared by every command that reads an image dataset.
ImageSize = Annotated[Optional[str], typer.Option("--size", help="Resize images to H,W (image folders).")]
PixelScale = Annotated[Optional[float], typer.Option("--scale", help="Multiply pixels by this (default 1/255).")]
PixelMean = Annotated[Optional[str], typer.Option("--mean", help="Subtract after scaling: one value or R,G,B.")]
PixelStd = Annotated[Optional[str], typer.Option("--std", help="Divide after the mean: one value or R,G,B.")]
ColorMode = Annotated[Optional[str], typer.Option("--color", help="rgb (default) or grayscale (image folders).")]
Layout = Annotated[Optional[str], typer.Option("--layout", help="NHWC (default) or NCHW (image folders).")]
