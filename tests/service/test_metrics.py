"""Prometheus metrics: model version label swaps, and aggregation across uvicorn workers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from dealscore_service.metrics import Metrics


def test_model_info_shows_only_the_model_in_use() -> None:
    m = Metrics()
    m.set_model("dealscore/1", "registry")
    m.set_model("dealscore/2", "local_copy")
    text = m.render()[0].decode()
    assert 'dealscore_model_info{source="local_copy",version="dealscore/2"} 1.0' in text
    assert "dealscore/1" not in text
    m.set_model(None, None)
    assert "dealscore_model_loaded 0.0" in m.render()[0].decode()


def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """Two processes (as two uvicorn workers would) count requests; /metrics shows the sum."""
    code = textwrap.dedent("""
        from dealscore_service.metrics import Metrics
        m = Metrics()
        m.requests.labels("POST", "/v1/score", "200").inc(3)
        m.set_model("dealscore/1", "path")
    """)
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    for _ in range(2):
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
    render = "from dealscore_service.metrics import Metrics; print(Metrics().render()[0].decode())"
    out = subprocess.run([sys.executable, "-c", render], env=env, check=True, capture_output=True, text=True).stdout
    assert 'dealscore_http_requests_total{method="POST",route="/v1/score",status="200"} 6.0' in out
    assert out.count('dealscore_model_info{pid="') == 2
