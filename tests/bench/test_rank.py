"""`rank_estimator` / `nasforge rank`: rank correlations of an estimator against a benchmark table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasforge.bench import rank_correlations, rank_estimator
from nasforge.cli import app
from nasforge.errors import ConfigError

# the shared benchmarks beside the checkout, or NASFORGE_BENCH_DIR (a worktree lives deeper)
BENCH = Path(
    os.environ.get("NASFORGE_BENCH_DIR")
    or Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"
)
needs_nb201 = pytest.mark.skipif(
    not (BENCH / "nb201" / "nb201_cifar10.csv").is_file(), reason=f"NB201 table not found in {BENCH}"
)
runner = CliRunner()


def test_rank_correlations_by_hand() -> None:
    assert rank_correlations([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx((1.0, 1.0))
    assert rank_correlations([4, 3, 2, 1], [10, 20, 30, 40]) == pytest.approx((-1.0, -1.0))
    # one discordant pair of 6: tau = (5 - 1) / 6; rho = 1 - 6 * 2 / (4 * 15)
    assert rank_correlations([1, 3, 2, 4], [1, 2, 3, 4]) == pytest.approx((0.8, 4 / 6))
    # nan and -inf rank last (tied), whatever the finite scores are
    rho, tau = rank_correlations([float("nan"), 5.0, 7.0, -math.inf], [0.0, 2.0, 3.0, 0.0])
    assert rho == pytest.approx(1.0) and tau == pytest.approx(1.0)
    assert all(math.isnan(v) for v in rank_correlations([1, 1, 1], [1, 2, 3]))


@needs_nb201
def test_table_columns_rank_the_test_accuracy() -> None:
    res = rank_estimator("nb201", "nb201", n=150, seed=0, root=BENCH, metrics=["valid_acc_12ep", "test_acc"])
    corr = res.correlations()
    assert corr["test_acc"] == pytest.approx((1.0, 1.0))
    assert 0.6 < corr["valid_acc_12ep"][0] < 0.95  # 12 epochs rank 200-epoch accuracy well, not perfectly
    assert len(set(res.archs)) == 150 and len(res.truth) == 150
    again = rank_estimator("nb201", "nb201", n=150, seed=0, root=BENCH, metrics=["valid_acc_12ep"])
    assert again.archs == res.archs  # seeded sample


@needs_nb201
def test_a_predictor_fitted_on_other_rows_ranks_better_than_chance() -> None:
    res = rank_estimator("nb201", "nb201", n=150, seed=1, root=BENCH, predictor="rf", train=80)
    (name,) = [m for m in res.scores if not m.endswith("_std")]
    assert name == "rf_valid_acc_12ep" and res.correlations()[name][0] > 0.5


@needs_nb201
def test_bad_requests_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="no numeric metric \\['nope'\\]"):
        rank_estimator("nb201", "nb201", n=5, root=BENCH, metrics=["nope"])
    with pytest.raises(ConfigError, match="valid benchmarks"):
        rank_estimator("nb202", "nb201", n=5, root=BENCH)
    with pytest.raises(ConfigError, match="n must be"):
        rank_estimator("nb201", "nb201", n=2, root=BENCH)


@needs_nb201
def test_cli_writes_json_and_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    args = [
        "rank",
        "-e",
        "zero_cost",
        "-o",
        "proxies=[synflow, params]",
        "--n",
        "6",
        "--bench-dir",
        str(BENCH),
    ]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "rank.json").read_text())
    assert set(data["correlations"]) == {"synflow", "params", "proxy_seconds"}
    assert len(data["truth"]) == 6 and (tmp_path / "rank.png").stat().st_size > 1000
    assert np.isfinite(data["scores"]["synflow"]).all()


@needs_nb201
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-o", "oops"], "--option takes KEY=VALUE (e.g. --option proxies=[synflow,naswot])"),
        (["-e", "nb201", "-o", "root=3"], "estimator 'nb201' cannot take options"),
        (["-e", "zero_cost", "-b", "nb301"], "space 'darts' has no network builder"),
        (["-e", "zero_cos"], "Did you mean 'zero_cost'?"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["rank", *args, "--n", "5", "--bench-dir", str(BENCH)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


# ----------------------------------------------------------------------------- --cells, --ensemble
CELLS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]


def test_read_cells_takes_cell_strings_and_json_parameters(tmp_path: Path) -> None:
    import nasforge as nf
    from nasforge.bench import read_cells

    space = nf.spaces.NB201Space()
    params = json.dumps(dict(space.from_arch_str(CELLS[1]).params))
    path = tmp_path / "cells.txt"
    path.write_text(f"# three cells\n{CELLS[0]}\n\n{params}\n  {CELLS[2]}  \n")
    archs = read_cells(path, space)
    assert [space.describe(a) for a in archs] == [CELLS[0], CELLS[1], CELLS[2]]
    path.write_text(f"{CELLS[0]}\n{CELLS[1]}\n|nor_conv_5x5~0|+oops\n")
    with pytest.raises(ConfigError, match=r"line 3: '\|nor_conv_5x5~0\|\+oops' is not an architecture"):
        read_cells(path, space)
    path.write_text(f"{CELLS[0]}\n")
    with pytest.raises(ConfigError, match="lists 1 architectures; give at least 3"):
        read_cells(path, space)
    with pytest.raises(ConfigError, match="cannot read the cells file"):
        read_cells(tmp_path / "missing.txt", space)


@needs_nb201
def test_cli_ranks_the_listed_cells_with_ensembles_and_kendall(tmp_path: Path) -> None:
    cells = tmp_path / "cells.txt"
    cells.write_text("\n".join(CELLS) + "\n")
    args = ["rank", "-o", "proxies=[synflow, params, flops]", "--cells", str(cells)]
    args += ["--ensemble", "log_rank:synflow+flops", "--ensemble", "vote:synflow+params"]
    result = runner.invoke(app, [*args, "--bench-dir", str(BENCH), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "log_rank:synflow+flops" in result.output and "Kendall tau" in result.output
    data = json.loads((tmp_path / "rank.json").read_text())
    assert data["archs"] == CELLS and data["meta"]["cells"] == str(cells)
    corr = data["correlations"]
    assert {"synflow", "log_rank:synflow+flops", "vote:synflow+params"} <= set(corr)
    assert all(set(c) == {"spearman", "kendall"} for c in corr.values())
    s, f = np.array(data["scores"]["synflow"]), np.array(data["scores"]["flops"])
    ranks_s, ranks_f = s.argsort().argsort() + 1.0, f.argsort().argsort() + 1.0  # no ties here
    expected = np.log(ranks_s / 4) + np.log(ranks_f / 4)
    assert np.allclose(data["scores"]["log_rank:synflow+flops"], expected)


@needs_nb201
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--cells", "nowhere.txt"], "cannot read the cells file 'nowhere.txt'"),
        (["--ensemble", "az_naz"], "unknown ensemble 'az_naz'. Did you mean 'az_nas'?"),
        (["--ensemble", "mean:synflow"], "unknown aggregation 'mean'"),
        (["--ensemble", "vote:synflow+meco"], "ensemble 'vote:synflow+meco' needs the metrics ['meco']"),
        (["--ensemble", "az_nas"], "which the estimator does not compute (it computes ['synflow'])"),
    ],
)
def test_cli_bad_cells_or_ensembles_are_one_line_and_exit_2(extra: list[str], message: str) -> None:
    args = ["rank", "-o", "proxies=[synflow]", "--n", "3", "--bench-dir", str(BENCH), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()) and "Traceback" not in result.output


@needs_nb201
@pytest.mark.slow  # three full-size NB201 networks through AZ-NAS: ~10 s on an idle core
def test_an_ensemble_named_among_the_proxies_is_scored_and_ranked() -> None:
    res = rank_estimator("nb201", "zero_cost", root=BENCH, n=3, estimator_options={"proxies": ["az_nas"]})
    assert {"az_expressivity", "az_progressivity", "az_trainability", "flops", "az_nas"} <= set(res.scores)
    assert set(res.correlations()["az_nas"]) and len(res.scores["az_nas"]) == 3
