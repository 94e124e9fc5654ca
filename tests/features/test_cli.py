"""``dealscore features``: the training frame of a history folder, and the catalog."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dealscore.cli import app
from dealscore.data.history import write_history
from dealscore.errors import DealscoreError
from dealscore.features import FeatureSpec, make_snapshots

from .conftest import random_history, simulator_available

MAVEN = Path(__file__).resolve().parents[3] / "shared" / "data" / "maven_crm"
runner = CliRunner()


def test_list_prints_the_catalog_as_table_and_markdown() -> None:
    table = runner.invoke(app, ["features", "--list"], terminal_width=200)
    assert table.exit_code == 0 and "declared_stage" in table.output
    md = runner.invoke(app, ["features", "--list", "--markdown"])
    assert md.exit_code == 0
    for name in FeatureSpec.default().feature_names:
        assert f"`{name}`" in md.output


def test_builds_the_training_frame_of_a_history_folder(tmp_path: Path) -> None:
    h = random_history(4, n_deals=15)
    write_history(h, tmp_path / "h")
    out, spec_out = tmp_path / "f.parquet", tmp_path / "spec.json"
    res = runner.invoke(app, ["features", str(tmp_path / "h"), "--out", str(out), "--spec", str(spec_out)])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(out)
    spec = FeatureSpec.from_dict(json.loads(spec_out.read_text()))
    assert list(frame.columns) == ["deal_id", "as_of", *spec.feature_names, "won", "real_stage"]
    assert len(frame) == len(make_snapshots(h))
    assert isinstance(frame["declared_stage"].dtype, pd.CategoricalDtype)
    assert spec.categories["industry"] == sorted(set(h.accounts["industry"]) & set(frame["industry"].dropna()))


@pytest.mark.skipif(not simulator_available(), reason="dealscore.data.simulate not available")
def test_works_on_the_simulators_output(tmp_path: Path) -> None:
    from dealscore.data.simulate import simulate, write_simulation

    write_simulation(simulate(200, seed=9), tmp_path / "sim")
    res = runner.invoke(app, ["features", str(tmp_path / "sim"), "--out", str(tmp_path / "f.parquet")])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert frame["real_stage"].notna().mean() > 0.9  # the simulator writes stage_truth
    assert frame["n_touches_total"].gt(0).mean() > 0.5


@pytest.mark.skipif(not MAVEN.is_dir(), reason=f"Maven CRM export not found at {MAVEN}")
def test_works_on_the_imported_maven_export(tmp_path: Path) -> None:
    """Maven has no touchpoints and one stage row per deal: features must cope with empty tables."""
    imported = runner.invoke(app, ["import", "maven", str(MAVEN), "--out", str(tmp_path / "maven")])
    assert imported.exit_code == 0, imported.output
    res = runner.invoke(app, ["features", str(tmp_path / "maven"), "--out", str(tmp_path / "f.parquet")])
    assert res.exit_code == 0, res.output
    frame = pd.read_parquet(tmp_path / "f.parquet")
    assert len(frame) > 10_000
    assert frame["n_touches_total"].eq(0).all() and frame["days_since_last_touch"].isna().all()
    assert frame["declared_stage"].notna().all() and frame["won"].notna().any()


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    h = random_history(1)
    write_history(h, tmp_path / "h")
    deals = pd.read_csv(tmp_path / "h" / "deals.csv")
    pd.concat([deals, deals.iloc[:1]]).to_csv(tmp_path / "h" / "deals.csv", index=False)
    for args, match in ((["features", str(tmp_path / "h"), "--out", str(tmp_path / "x.parquet")], "repeat"),
                        (["features"], "needs a history folder")):
        res = runner.invoke(app, args)
        assert isinstance(res.exception, DealscoreError) and match in str(res.exception)
        assert "Fix:" in str(res.exception)
    # through the console entry point: one line on stderr, exit code 2, no traceback
    done = subprocess.run(
        [sys.executable, "-c", "from dealscore.cli import main; main()", "features", str(tmp_path / "nowhere"),
         "--out", str(tmp_path / "x.parquet")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "error:" in done.stderr and "Traceback" not in done.stderr
