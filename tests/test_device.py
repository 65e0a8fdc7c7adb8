"""Device resolution, mixed precision and where trials train (nasforge/_device.py).

This machine has no GPU: the resolution logic, the error lines and the CPU path are tested here
everywhere; what needs CUDA is marked to skip without it.
"""

from __future__ import annotations

import pytest
import torch

import nasforge as nf
from nasforge._device import (
    check_amp,
    check_device_and_amp,
    check_device_name,
    device_info,
    resolve_amp,
    resolve_device,
    visible_gpus,
)
from nasforge.errors import ConfigError
from nasforge.estimate import TrialContext

pytestmark = pytest.mark.usefixtures("one_torch_thread")
# device_count() (NVML) rather than is_available(): the latter initialises CUDA in this process,
# and the process executor's GPU test needs a test process whose forked children can still use it
cuda = pytest.mark.skipif(torch.cuda.device_count() == 0, reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def task() -> nf.datasets.Task:
    return nf.datasets.load("digits")


@pytest.fixture(scope="module")
def arch(task):
    space = nf.spaces.ChainCNN(depth=(1, 3), layer={"filters": [8, 16]}).bind(
        task.input_shape, task.num_classes
    )
    layer = {"op": "conv", "kernel": 3, "stride": 1, "padding": "same", "filters": 16, "act": "relu"}
    layer["skip"] = False
    return space.make({"depth": 2, **{f"layer{i}.{k}": v for i in range(2) for k, v in layer.items()}})


def no_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)


def gpus(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Pretend ``n`` GPUs for the resolver (only the counting is replaced; nothing runs on them)."""
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


# --------------------------------------------------------------------------- resolution
@pytest.mark.parametrize("name", ["auto", "cpu", "CPU", " cuda ", "cuda:0", "cuda:12", "mps", None])
def test_device_names_are_recognised(name) -> None:
    assert check_device_name(name) in {"auto", "cpu", "cuda", "cuda:0", "cuda:12", "mps"}


@pytest.mark.parametrize("name", ["gpu", "cuda:", "cuda:-1", "cpu:0", "mps:1", "tpu", "", "cuda:x"])
def test_unknown_device_names_say_what_is_valid(name) -> None:
    with pytest.raises(ConfigError, match=r"unknown device .*valid: auto, cpu, cuda, cuda:N, mps"):
        check_device_name(name)


def test_auto_is_the_cpu_without_a_gpu(monkeypatch) -> None:
    no_cuda(monkeypatch)
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")


def test_auto_prefers_cuda_then_mps(monkeypatch) -> None:
    gpus(monkeypatch, 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("cuda") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("mps")


def test_cuda_without_a_gpu_is_one_clear_line(monkeypatch) -> None:
    no_cuda(monkeypatch)
    with pytest.raises(ConfigError) as info:
        resolve_device("cuda")
    text = str(info.value)
    assert "\n" not in text and "device 'cuda' asked for" in text and "use --device cpu or auto" in text


def test_a_gpu_index_past_the_visible_ones_names_them(monkeypatch) -> None:
    gpus(monkeypatch, 1)
    with pytest.raises(ConfigError, match=r"'cuda:3' asked for, but this process sees 1 CUDA GPU \(cuda:0\)"):
        resolve_device("cuda:3")
    gpus(monkeypatch, 2)
    with pytest.raises(ConfigError, match=r"sees 2 CUDA GPUs \(cuda:0..cuda:1\)"):
        resolve_device("cuda:2")


def test_mps_where_there_is_none(monkeypatch) -> None:
    no_cuda(monkeypatch)
    with pytest.raises(ConfigError, match="MPS is not available"):
        resolve_device("mps")


# --------------------------------------------------------------------------- amp
def test_amp_defaults_to_off_on_cpu_and_bf16_where_a_gpu_supports_it(monkeypatch) -> None:
    cpu = torch.device("cpu")
    assert resolve_amp("auto", cpu) == "off" and resolve_amp(None, cpu) == "off"
    assert resolve_amp("bf16", cpu) == "bf16" and resolve_amp(False, cpu) == "off"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_amp("auto", torch.device("cuda", 0)) == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert resolve_amp("auto", torch.device("cuda", 0)) == "off"
    assert resolve_amp("fp16", torch.device("cuda", 0)) == "fp16"


def test_bad_amp_values_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="amp must be one of auto, off, bf16, fp16, got 'fp8'"):
        check_amp("fp8")
    with pytest.raises(ConfigError, match="amp fp16 needs a GPU"):
        resolve_amp("fp16", torch.device("cpu"))


def test_constructors_check_device_and_amp_before_any_training(task, monkeypatch) -> None:
    no_cuda(monkeypatch)
    assert check_device_and_amp("CPU", "off") == ("cpu", "off")
    with pytest.raises(ConfigError, match="device 'cuda' asked for"):
        nf.TrainEstimator(task, device="cuda")
    with pytest.raises(ConfigError, match="amp fp16 needs a GPU"):
        nf.TrainEstimator(task, device="cpu", amp="fp16")
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        nf.train_final(None, task, device="gpu")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the CPU path is unchanged
# Recorded on main before the device option existed (commit fcbe164), digits, one torch thread.
BEFORE_TRIAL = (0.5861111111111111, 2.0762230767144096, 2.0766629863094974)
BEFORE_FINAL = (0.11944444444444445, 0.13055555555555556, 2.2782991197374134, 2.2778189100373534)


@pytest.mark.parametrize("device", ["cpu", "auto", None])
def test_cpu_and_auto_give_the_trials_of_the_code_before_devices(task, arch, device, monkeypatch) -> None:
    no_cuda(monkeypatch)  # "auto" on a GPU machine is the GPU; here it must be the CPU path
    options = {} if device is None else {"device": device}
    est = nf.TrainEstimator(task, epochs=2, batch_size=32, lr=0.01, threads=1, fraction=0.5, **options)
    m = est.evaluate(arch, TrialContext(0, 7))
    assert (m["val_accuracy"], m["val_loss"], m["train_loss"]) == BEFORE_TRIAL
    assert m["device"] == "cpu" and m["amp"] == "off" and m["torch_version"] == torch.__version__
    final = nf.train_final(
        arch, task, epochs=1, batch_size=64, threads=1, seed=3, augment="shift+flip", **options
    )
    f = final.metrics
    assert (f["val_accuracy"], f["test_accuracy"], f["test_loss"], f["train_loss"]) == BEFORE_FINAL
    assert f["device"] == "cpu" and f["amp"] == "off"


def test_device_info_names_the_cpu() -> None:
    info = device_info(torch.device("cpu"), "off")
    assert info["device"] == "cpu" and info["device_name"] and info["amp"] == "off"
    assert info["cuda_version"] == torch.version.cuda


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 3,GPU-abc")
    assert visible_gpus() == ["2", "3", "GPU-abc"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1,-1,2")
    assert visible_gpus() == ["1"]  # CUDA stops at the first invalid entry
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    gpus(monkeypatch, 3)
    assert visible_gpus() == ["0", "1", "2"]


def test_task_to_moves_every_split_once(task) -> None:
    assert task.to("cpu") is task
    meta = task.to("meta")
    assert all(getattr(meta, f"{k}_{s}").is_meta for k in "xy" for s in ("train", "val", "test"))


def test_bf16_autocast_trains_on_cpu(task, arch) -> None:
    """amp bf16 on the CPU is allowed (and exercises the autocast path without a GPU)."""
    result = nf.train_final(arch, task, epochs=1, threads=1, device="cpu", amp="bf16")
    assert result.metrics["amp"] == "bf16" and 0 <= result.metrics["val_accuracy"] <= 1
    assert next(result.module.parameters()).dtype == torch.float32


# --------------------------------------------------------------------------- on a GPU
@cuda
@pytest.mark.parametrize("amp", ["off", "bf16", "fp16"])
def test_a_training_step_under_amp_on_cuda(task, arch, amp) -> None:
    from nasforge.estimate._loop import fit

    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    model = arch.build(task.input_shape, task.num_classes)
    result = fit(
        model, task.x_train, task.y_train, x_val=task.x_val, y_val=task.y_val, device="cuda", amp=amp
    )
    assert next(model.parameters()).is_cuda and result.val_accuracy > 0.2


@cuda
def test_a_task_moves_to_cuda_and_a_trial_trains_there(task, arch) -> None:
    on_gpu = task.to("cuda:0")
    assert on_gpu.x_train.is_cuda and on_gpu.y_test.is_cuda and on_gpu.input_shape == task.input_shape
    est = nf.TrainEstimator(task, epochs=1, device="cuda")
    m = est.evaluate(arch, TrialContext(0, 7))
    assert (
        m["device"] == "cuda:0"
        and m["cuda_version"]
        and est._task_on(torch.device("cuda", 0)) is est._device_task
    )


@cuda
def test_loading_a_model_onto_cuda(task, arch, tmp_path) -> None:
    trained = nf.train_final(arch, task, epochs=1, device="cuda")
    path = trained.save(tmp_path / "m.nasforge")
    model = nf.load(path, device="cuda")
    assert next(model.module.parameters()).is_cuda
    assert len(model(torch.rand(2, *model.input_shape))) == 2


# --------------------------------------------------------------------------- CLI and YAML
CLI_TINY = ["--trials", "2", "--epochs", "1", "--final-epochs", "1"]


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NASFORGE_DATA_DIR", raising=False)
    return tmp_path


def _cli(*args: str):
    from typer.testing import CliRunner

    from nasforge.cli import app

    return CliRunner().invoke(app, list(args))


def _one_error_line(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    return lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--device", "cuda"], "device 'cuda' asked for"),
        (["--device", "cuda:3"], "device 'cuda:3' asked for"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--amp", "fp8"], "amp must be one of auto, off, bf16, fp16"),
        (["--device", "cpu", "--amp", "fp16"], "amp fp16 needs a GPU"),
    ],
)
def test_search_refuses_an_unusable_device_before_making_a_run_directory(in_tmp, monkeypatch, args, expected):
    no_cuda(monkeypatch)
    line = _one_error_line(_cli("search", *CLI_TINY, *args))
    assert expected in " ".join(line.split()) and not (in_tmp / "runs").exists()


def test_cuda_n_past_the_gpus_is_refused_in_yaml_too(in_tmp, monkeypatch) -> None:
    gpus(monkeypatch, 1)
    (in_tmp / "s.yaml").write_text("device: cuda:3\ntrials: 2\n")
    line = " ".join(_one_error_line(_cli("search", "s.yaml")).split())
    assert "'cuda:3' asked for, but this process sees 1 CUDA GPU (cuda:0)" in line
    assert not (in_tmp / "runs").exists()


def test_yaml_device_and_amp_are_validated_and_amp_off_parses() -> None:
    from nasforge.config import parse_config

    cfg = parse_config({"device": "CPU", "amp": False})
    assert (cfg.device, cfg.amp) == ("cpu", "off")
    assert (parse_config({}).device, parse_config({}).amp) == ("auto", "auto")
    with pytest.raises(ConfigError, match=r"device: .*unknown device 'tpu'"):
        parse_config({"device": "tpu"})


def test_a_cpu_search_records_the_device_in_every_trial_and_the_model(in_tmp, monkeypatch) -> None:
    import json

    no_cuda(monkeypatch)
    result = _cli("search", *CLI_TINY, "--device", "cpu", "--amp", "off")
    assert result.exit_code == 0, result.output
    run = in_tmp / "runs" / "digits-evolution"
    final = json.loads((run / "final.json").read_text())
    assert final["final_metrics"]["device"] == "cpu" and final["final_metrics"]["amp"] == "off"
    assert final["search_metrics"]["device"] == "cpu" and final["search_metrics"]["device_name"]
    model = nf.load(run / "model.nasforge")
    assert model.metrics["device"] == "cpu" and "cuda_version" in model.provenance
    shown = _cli("show", str(run), "--json")  # read back from the run's database
    rows = json.loads(shown.output)["trials"]
    assert {r["device"] for r in rows} == {"cpu"} and {r["amp"] for r in rows} == {"off"}
    assert all(r["cuda_version"] == torch.version.cuda for r in rows)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["train", "digits-s", "--device", "cuda"], "device 'cuda' asked for"),
        (["predict", "digits-s", "x.png", "--device", "cuda:1"], "device 'cuda:1' asked for"),
        (["profile", "digits-s", "--device", "mps"], "MPS is not available"),
        (["train", "digits-s", "--amp", "half"], "amp must be one of"),
    ],
)
def test_train_predict_and_profile_refuse_an_unusable_device(in_tmp, monkeypatch, command, expected) -> None:
    no_cuda(monkeypatch)
    assert expected in " ".join(_one_error_line(_cli(*command)).split())


def test_load_runs_the_model_where_asked(monkeypatch) -> None:
    no_cuda(monkeypatch)
    model = nf.load("digits-s", device="cpu")
    assert next(model.module.parameters()).device.type == "cpu"
    with pytest.raises(ConfigError, match="device 'cuda' asked for"):
        nf.load("digits-s", device="cuda")


def test_gpu_latency_is_labelled_and_synchronised_where_it_is_measured() -> None:
    from nasforge.hardware import measure_latency

    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
    assert measure_latency(net, (1, 8, 8), repeats=2, warmup=0).backend == "torch"  # CPU: as before
    if torch.cuda.device_count():
        assert measure_latency(net.cuda(), (1, 8, 8), repeats=2, warmup=0).backend == "torch_cuda"


def test_the_config_device_reaches_estimator_strategy_and_executor(monkeypatch) -> None:
    from nasforge.config import parse_config
    from nasforge.experiment._search import prepare_search

    gpus(monkeypatch, 2)
    prepared = prepare_search(parse_config({"device": "cuda:1", "amp": "off", "executor": "process"}))
    assert (prepared.estimator.device, prepared.estimator.amp) == ("cuda:1", "off")
    assert prepared.executor_options == {"gpus": []}  # a fixed cuda:N: no rotation
    own = parse_config(
        {"device": "cuda", "estimator": {"name": "train", "device": "cpu"}, "executor": "process"}
    )
    prepared = prepare_search(own)
    assert prepared.estimator.device == "cpu" and prepared.executor_options == {"gpus": []}
    rotating = prepare_search(parse_config({"device": "auto", "executor": "process"}))
    assert rotating.estimator.device == "auto" and "gpus" not in (rotating.executor_options or {})
    spos = prepare_search(parse_config({"device": "cuda:1", "strategy": "spos"}))
    assert spos.strategy_options["device"] == "cuda:1"


def test_a_ray_driver_without_a_gpu_checks_only_the_name(monkeypatch) -> None:
    from nasforge.config import parse_config
    from nasforge.experiment._search import prepare_search

    no_cuda(monkeypatch)
    prepared = prepare_search(parse_config({"device": "cuda", "amp": "fp16", "executor": "ray"}))
    assert (prepared.estimator.device, prepared.estimator.amp) == ("cuda", "fp16")  # resolved on workers
    with pytest.raises(ConfigError, match="unknown device 'gpu'"):
        prepare_search(parse_config({"device": "gpu", "executor": "ray"}))


def test_tuning_trains_where_asked(task, arch, monkeypatch) -> None:
    from nasforge.deploy._train import tune_training

    no_cuda(monkeypatch)
    result = tune_training(arch, task, n_trials=1, max_epochs=1, device="cpu", amp="off", threads=1)
    assert 0 <= result.best_val_accuracy <= 1
    with pytest.raises(ConfigError, match="device 'cuda' asked for"):
        tune_training(arch, task, n_trials=1, max_epochs=1, device="cuda")
