"""`dealscore demo` is the README's main job: run it for real, end to end, on a small CRM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pandas as pd
import pytest


@pytest.mark.slow
def test_demo_runs_end_to_end_and_says_where_to_look(tmp_path: Path) -> None:
    env = dict(os.environ)
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("COLUMNS", None)  # output to a pipe, as in `make demo > log`
    # kept serving, as `make demo` does, then stopped the way `kill` or `timeout` stop it
    proc = subprocess.Popen(
        [sys.executable, "-m", "dealscore", "demo", "--deals", "1500", "--seed", "3",
         "--workdir", str(tmp_path / "demo"), "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path,
    )
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "keeps running" in line:
            break
    served = re.search(r"API docs:\s+(http://127\.0\.0\.1:\d+)/docs", "".join(lines))
    assert served, "".join(lines)[-4000:]
    assert httpx.get(f"{served.group(1)}/healthz", timeout=10).status_code == 200
    proc.send_signal(signal.SIGTERM)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert proc.returncode == 0, out[-4000:]
    with pytest.raises(httpx.TransportError):  # the demo took its server down with it
        httpx.get(f"{served.group(1)}/healthz", timeout=5)
    assert "Traceback" not in out
    demo = tmp_path / "demo"
    # every stage left its product behind
    assert (demo / "history" / "deals.csv").is_file()
    assert (demo / "report.json").is_file()
    assert (demo / "mlflow.db").is_file()
    scores = pd.read_parquet(demo / "scores.parquet")
    assert len(scores) > 0 and scores["p_win"].between(0, 1).all()
    # value at risk is money: never more than the deal's amount, on every row
    assert (scores["value_at_risk"] <= scores["amount"].fillna(0.0) + 1e-9).all()
    assert (demo / "scores.db").is_file()
    # and it told the user where to look
    for needle in ("Load report", "roc auc", "deals at risk", "/docs", "/ui", "mlflow ui", "Demo API key"):
        assert needle in out, needle
    # a log keeps commands whole: the curl line ends with its closing quote, not a wrapped border
    assert any(ln.rstrip().endswith("limit=5'") and "curl -H" in ln for ln in out.splitlines())
    # the example score reads as people read it: a percentage such as '37%' or '<1%', never 'p_win=0.00'
    assert re.search(r"win probability (<1%|>99%|\d{1,2}%) \(grade [A-D]\)", out), out[-3000:]
