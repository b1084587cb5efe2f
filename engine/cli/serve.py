"""``sop serve``: the staff web app and the HTTP API, with the timer sweep and delivery in-process."""
from __future__ import annotations

from typing import Optional

import click

from engine.cli.context import Context, pass_ctx
from engine.cli.errors import fail_cleanly
from engine.cli.parsing import Seconds, notify_option
from engine.errors import InputError


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@notify_option
@click.option("--no-scheduler", is_flag=True, help="Do not run the timer sweep in this process.")
@click.option("--no-outbox", is_flag=True, help="Do not deliver notifications from this process.")
@click.option("--sweep-interval", type=Seconds(), default=1.0, show_default=True, help="Seconds between sweeps.")
@click.option("--max-body", type=click.IntRange(1024), default=256 * 1024, show_default=True,
              help="Largest API request body accepted, in bytes.")
@click.option("--files", "files_dir", envvar="SOP_FILES", type=click.Path(file_okay=False),
              help="Where the web app keeps uploaded evidence (env SOP_FILES; default: beside the SQLite "
                   "file, e.g. sop-files/).")
@click.option("--secure-cookies", is_flag=True, help="Send the web session cookie only over HTTPS "
                                                      "(behind a TLS-terminating proxy).")
@pass_ctx
@fail_cleanly
def serve(ctx: Context, host: str, port: int, notify_file: Optional[str], no_scheduler: bool, no_outbox: bool,
          sweep_interval: float, max_body: int, files_dir: Optional[str], secure_cookies: bool) -> None:
    """Serve the staff web app (/) and the HTTP API (OpenAPI at /docs); also sweeps timers and
    delivers notifications."""
    from adapters.notify import config as notify_config
    from engine.api import create_app
    from engine.api import server
    from engine.runtime.outbox import Dispatcher, OutboxWorker
    from engine.runtime.worker import start_background

    engine = ctx.engine
    delivery = notify_config.load(notify_file)
    from pathlib import Path
    app = create_app(engine, max_body, web_options={"files_dir": Path(files_dir) if files_dir else None,
                                                    "https_only": secure_cookies})
    try:
        sock = server.bind(host, port)
    except OSError as e:
        raise InputError("--port", f"cannot listen on {host}:{port}: {e.strerror}") from None
    scheduler = None if no_scheduler else start_background(engine, sweep_interval)
    outbox = None if no_outbox else OutboxWorker(Dispatcher(engine, delivery)).start()
    url = server.url_of(sock)
    for line in engine.library.disabled_lines():
        click.echo(f"sop serve: {line}", err=True)
    click.echo(f"sop serve: {url}/docs  (staff pages: {url}/; timer sweep {'off' if no_scheduler else 'on'}; "
               f"notifications {'off' if no_outbox else 'via ' + ', '.join(delivery.spec.default)})", err=True)
    try:
        server.run(app, sock)
    finally:
        if outbox is not None:
            outbox.stop()
        if scheduler is not None:
            scheduler.shutdown(wait=True)


COMMANDS = (serve,)
