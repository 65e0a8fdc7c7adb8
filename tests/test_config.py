"""Search configs: sections without a name take the default component; misspelt keys get a hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

import nasforge as nf
from nasforge.cli import app
from nasforge.config import LARGE_BUDGET, SMALL_BUDGET, parse_config
from nasforge.errors import ConfigError, SpaceError

runner = CliRunner()


def test_a_section_without_a_name_is_the_default_component_with_those_options() -> None:
    cfg = parse_config(
        {"estimator": {"epochs": 5}, "strategy": {"population": 4}, "space": {"depth": [1, 2]}}
    )
    assert cfg.estimator == {**SMALL_BUDGET["estimator"], "epochs": 5}
    assert cfg.strategy == {"name": "evolution", "population": 4, "tournament": 3}
    assert cfg.space == {"name": "chain_cnn", "depth": [1, 2], "max_params": 150_000}
    # on MNIST-sized data the defaults are that dataset's budget, for final: as well
    big = parse_config({"data": "mnist", "estimator": {"epochs": 2}, "final": {"epochs": 3}})
    assert big.estimator == {**LARGE_BUDGET["estimator"], "epochs": 2}
    assert (big.final.epochs, big.final.batch_size, big.final.lr) == (3, 128, 0.005)
    # a section that names another component keeps only its own options
    assert parse_config({"strategy": {"name": "random"}}).strategy == {"name": "random"}


@pytest.mark.parametrize("section", ["scheduler", "executor"])
def test_a_section_with_no_default_component_lists_the_names(section: str) -> None:
    with pytest.raises(ConfigError, match=rf"{section} needs a 'name' \(one of .*\), e\.g\. {section}: "):
        parse_config({section: {"eta": 2}})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"estimatr": {"epochs": 3}}, "estimatr: unknown key. Did you mean 'estimator'?"),
        ({"trails": 4}, "trails: unknown key. Did you mean 'trials'?"),
        ({"data": {"nmae": "digits"}}, "data.nmae: unknown key. Did you mean 'name'?"),
        ({"final": {"epoch": 3}}, "final.epoch: unknown key. Did you mean 'epochs'?"),
        ({"zzz": 1}, "zzz: unknown key (valid keys: name, space, data,"),
    ],
)
def test_unknown_keys_get_a_suggestion(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data)
    assert message in str(info.value)


def test_unknown_chain_layer_setting_gets_a_suggestion() -> None:
    with pytest.raises(SpaceError, match=r"Did you mean 'filters'\?"):
        nf.spaces.ChainCNN(layer={"fliters": [8]})


def test_cli_search_with_only_estimator_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("estimator: {epochs: 1}\nspace: {depth: [1, 2]}\ntrials: 1\nfinal: {epochs: 0}\n")
    result = runner.invoke(app, ["search", str(cfg), "-q"])
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "runs" / "digits-evolution" / "config.yaml").read_text())
    assert saved["estimator"] == {**SMALL_BUDGET["estimator"], "epochs": 1}
    assert saved["space"]["name"] == "chain_cnn" and saved["space"]["depth"] == [1, 2]
    typo = tmp_path / "t.yaml"
    typo.write_text("estimatr: {epochs: 1}\n")
    bad = runner.invoke(app, ["search", str(typo)])
    assert bad.exit_code == 2 and "Did you mean 'estimator'?" in " ".join(bad.output.split())
    assert "Traceback" not in bad.output


def test_cli_names_a_component_for_a_config_section_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "strategy: {population: 4}\nscheduler: {eta: 2}\nestimator: {epochs: 2}\n"
        "space: {depth: [1, 2], layer: {filters: [8]}}\ntrials: 1\nfinal: {epochs: 0}\nname: named\n"
    )
    args = ["search", str(cfg), "--strategy", "evolution", "--scheduler", "successive_halving", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    saved = yaml.safe_load((tmp_path / "runs" / "named" / "config.yaml").read_text())
    assert saved["strategy"] == {
        "name": "evolution",
        "population": 4,
        "tournament": 3,
    }  # kept, defaults added
    assert saved["scheduler"] == {"name": "successive_halving", "eta": 2}
