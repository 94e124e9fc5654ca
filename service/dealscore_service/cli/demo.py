"""``dealscore demo``: the whole product end to end on the embedded defaults.

It runs the same commands a user would type (and prints each one), so the demo
doubles as a tour: generate a synthetic CRM, validate it, train and evaluate,
score the open pipeline, list the deals at risk, then start the scoring service,
score a few deals through HTTP and print where to look.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress
from rich.rule import Rule

from dealscore.cli import app, console
from dealscore.errors import DealscoreError
from dealscore.paths import DATA_DIR_ENV, data_dir
from dealscore_service.auth import add_key_to_file
from dealscore_service.client import deal_payloads


def _run(args: list[str]) -> None:
    """Run a dealscore command in process, echoing it the way a user would type it."""
    console.print(Rule(f"[bold]$ dealscore {shlex.join(args)}", align="left", style="cyan"))
    command = typer.main.get_command(app)
    try:
        command.main(args, prog_name="dealscore", standalone_mode=False)
    except SystemExit as exc:  # a sub-command asked to exit
        if exc.code not in (0, None):
            raise DealscoreError(f"demo step `dealscore {shlex.join(args)}` failed (exit {exc.code})") from exc


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", preferred))  # 0 asks the OS for any free port
        except OSError:
            s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@app.command()
def demo(
    deals: Annotated[int, typer.Option("--deals", help="Size of the synthetic CRM.")] = 8000,
    seed: Annotated[int, typer.Option("--seed")] = 7,
    workdir: Annotated[
        Path | None,
        typer.Option("--workdir", help="Where the demo writes everything (default: the data folder, "
                     "$DEALSCORE_DATA_DIR or .dealscore)."),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port for the scoring service.")] = 8000,
    serve: Annotated[
        bool, typer.Option("--serve/--no-serve", help="End by starting the scoring service.")
    ] = True,
    keep_serving: Annotated[
        bool, typer.Option("--keep-serving/--exit", help="Keep the service running until Ctrl-C.")
    ] = True,
) -> None:
    """Run the whole product end to end on a synthetic CRM and print where to look."""
    workdir = (workdir or data_dir()).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    # the demo's folder is the data folder of everything it runs: MLflow store, model copy, service files
    os.environ[DATA_DIR_ENV] = str(workdir)
    history = workdir / "history"
    started = time.perf_counter()
    _run(["generate", "--deals", str(deals), "--seed", str(seed), "--out", str(history)])
    _run(["validate", str(history)])
    _run(["train", str(history), "--report-json", str(workdir / "report.json")])
    _run(["score", str(history), "--out", str(workdir / "scores.parquet")])
    _run(["at-risk", str(history), "--top", "10"])
    elapsed = time.perf_counter() - started
    console.print(f"\n[green]Pipeline done in {elapsed:.0f} s.[/]")
    if not serve:
        _print_where_to_look(workdir, None, None)
        return
    _serve_demo(workdir, history, port, keep_serving)


def _print_where_to_look(workdir: Path, base_url: str | None, api_key: str | None) -> None:
    from dealscore.tracking import tracking_uri  # MLflow loads in seconds: only when the demo gets here

    lines = [
        f"History:        {workdir / 'history'}",
        f"Eval report:    {workdir / 'report.json'}",
        f"Scores:         {workdir / 'scores.parquet'}",
        f"MLflow UI:      .venv/bin/mlflow ui --backend-store-uri {tracking_uri()} --port 5000",
    ]
    if base_url:
        lines += [
            f"API docs:       {base_url}/docs",
            f"Manager page:   {base_url}/ui   (log in with the API key below)",
            f"Metrics:        {base_url}/metrics",
            f"Demo API key:   {api_key}",
            f"Try it:         curl -H 'X-API-Key: {api_key}' '{base_url}/v1/deals/at-risk?limit=5'",
        ]
    # a rule above and below, no side borders, and lines the console never breaks (soft wrap: a narrow terminal
    # folds them on screen, a copy gives the whole command); a panel broke the curl line at the terminal's width
    console.rule("Where to look", style="green")
    for line in lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)
    console.rule(style="green")


def _stop_on_termination() -> Callable[[], None]:
    """Make SIGTERM and SIGHUP (``kill``, ``timeout``, a closed terminal) stop the demo like Ctrl-C does.

    By default they end Python without running ``finally``, which left the demo's
    server running on its port after the demo was gone. Returns what restores the
    previous handlers. Off the main thread (signals cannot be set there) it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    sigs = [s for s in (signal.SIGTERM, getattr(signal, "SIGHUP", None)) if s is not None]
    previous = {s: signal.signal(s, interrupt) for s in sigs}

    def restore() -> None:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return restore


def _serve_demo(workdir: Path, history: Path, port: int, keep_serving: bool) -> None:
    """Start `dealscore serve` on the demo model, score a few deals over HTTP, print the URLs."""
    import httpx

    keys_file = workdir / "api_keys.yaml"
    keys_file.unlink(missing_ok=True)  # a fresh demo key each run; only its hash is stored
    api_key = add_key_to_file(keys_file, name="demo", scopes=["score", "read", "admin"])
    port = _free_port(port)
    base_url = f"http://127.0.0.1:{port}"
    env = dict(os.environ)
    env.update(
        {
            "DEALSCORE_DATA_DIR": str(workdir),
            "DEALSCORE_DATABASE_URL": f"sqlite:///{workdir / 'scores.db'}",
            "DEALSCORE_API_KEYS_FILE": str(keys_file),
        }
    )
    headers = {"X-API-Key": api_key}
    cmd = [sys.executable, "-m", "dealscore", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning"]
    console.print(Rule(f"[bold]$ dealscore serve --port {port}", align="left", style="cyan"))
    proc = subprocess.Popen(cmd, env=env)
    restore = _stop_on_termination()
    try:
        deadline = time.monotonic() + 90
        with httpx.Client(base_url=base_url, timeout=10) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if proc.poll() is not None:
                    raise DealscoreError(f"the service exited with code {proc.returncode}; see its log above")
                time.sleep(0.5)
            else:
                raise DealscoreError("the service did not become ready within 90 s; see its log above")
            payloads = deal_payloads(str(history), limit=None)
            results: list[dict[str, object]] = []
            with Progress(console=console, transient=True) as progress:
                task = progress.add_task("POST /v1/score/batch (the open pipeline)", total=len(payloads))
                for start in range(0, len(payloads), 100):
                    chunk = payloads[start : start + 100]
                    as_of = chunk[0]["as_of"]
                    body = {"deals": [{k: v for k, v in p.items() if k != "as_of"} for p in chunk], "as_of": as_of}
                    resp = client.post("/v1/score/batch", json=body, headers=headers, timeout=120)
                    if resp.status_code != 200:
                        raise DealscoreError(f"POST /v1/score/batch answered {resp.status_code}: {resp.text[:300]}")
                    results.extend(resp.json()["results"])
                    progress.advance(task, len(chunk))
            one = client.post("/v1/score", json=payloads[0], headers=headers)
            if one.status_code != 200:
                raise DealscoreError(f"POST /v1/score answered {one.status_code}: {one.text[:300]}")
            sample = one.json()
            console.print(
                f"Scored {len(results)} open deals through the HTTP API. Example, POST /v1/score for deal "
                f"{sample['deal_id']}: win probability {sample['p_win_display']} (grade {sample['grade']}), declared "
                f"{sample['declared_stage']}, inferred {sample['inferred_stage']}"
            )
            if sample.get("actions"):
                console.print(f"  next-best action: {sample['actions'][0]['text']}")
        _print_where_to_look(workdir, base_url, api_key)
        if keep_serving:
            console.print("[bold]The service keeps running; press Ctrl-C to stop it.[/]")
            proc.wait()
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
