"""``tflite-deploy farm ...`` commands. ``register(app)`` adds them to the main Typer app.

Also runnable alone before that wiring: ``python -m tflite_deploy.farm.cli worker --scheduler ADDR``.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import typer


def adb_serials() -> list[str]:
    """Serials of the usable devices on the local adb server."""
    from tflite_deploy.adb import list_devices

    return [d.serial for d in list_devices(facts=False) if d.usable]


def register(app: typer.Typer, discover: Callable[[], Sequence[str]] = adb_serials) -> None:
    farm = typer.Typer(help="Run a plan of models × recipes × devices on a Dask cluster.", no_args_is_help=True)

    @farm.command("worker")
    def worker(
        scheduler: str = typer.Option(..., "--scheduler", help="The farm scheduler: tcp://HOST:PORT, or tls://HOST:PORT in a lab."),
        phone: List[str] = typer.Option([], "--phone", help="Serial of an attached phone to offer (repeat). Default: every usable device adb lists."),
        host_slots: int = typer.Option(0, "--host-slots", min=0, help="Also take N host cells at a time (convert, eval, host bench)."),
        name: Optional[str] = typer.Option(None, "--name", help="Worker name shown by the scheduler (default: its address)."),
        listen: Optional[str] = typer.Option(None, "--listen-host", help="Address to listen on for other workers (default: the interface that reaches the scheduler)."),
        tls_ca: Optional[str] = typer.Option(None, "--tls-ca", help="Lab CA certificate (PEM); env TFLITE_DEPLOY_TLS_CA."),
        tls_cert: Optional[str] = typer.Option(None, "--tls-cert", help="This host's certificate (PEM); env TFLITE_DEPLOY_TLS_CERT."),
        tls_key: Optional[str] = typer.Option(None, "--tls-key", help="This host's private key (PEM); env TFLITE_DEPLOY_TLS_KEY."),
    ) -> None:
        """Serve this host's phones to a farm scheduler: one Dask resource phone-SERIAL=1 per phone."""
        from tflite_deploy.errors import UserError
        from tflite_deploy.farm.scheduler import start_worker
        from tflite_deploy.farm.security import security_from_options

        try:
            security = security_from_options(tls_ca, tls_cert, tls_key)
            if scheduler.startswith("tls://") != (security is not None):
                raise UserError(f"Scheduler {scheduler}: a tls:// address needs --tls-ca/--tls-cert/--tls-key, "
                                "and TLS certificates need a tls:// address.")
            start_worker(scheduler, phone or None, None if phone else discover, host_slots=host_slots,
                         security=security, name=name, listen_host=listen)
        except UserError as e:
            typer.echo(f"Error: {e}", err=True)
            raise typer.Exit(getattr(e, "exit_code", 2)) from None

    app.add_typer(farm, name="farm")


def main() -> None:
    app = typer.Typer(no_args_is_help=True)
    register(app)
    app()


if __name__ == "__main__":
    main()
