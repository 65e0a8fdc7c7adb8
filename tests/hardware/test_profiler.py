"""The Profiler: counts, the constraint filter before training, latency of a model and a profile."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import nasforge as nf
from nasforge.errors import ConfigError
from nasforge.hardware import Profiler, count_flops, count_params, peak_activation_bytes
from nasforge.hardware._profiler import is_latency_metric
from nasforge.objective import MetricConstraint


@pytest.fixture(scope="module")
def space():
    return nf.spaces.ChainCNN(depth=2, layer={"op": ["conv"], "filters": [8, 16]}).bind((1, 8, 8), 10)


@pytest.fixture(scope="module")
def arch(space):
    return space.sample(np.random.default_rng(0))


def test_counts_of_an_architecture_and_a_module_agree(space, arch):
    module = arch.build()
    expected = {
        "params": count_params(module),
        "flops": count_flops(module, (1, 8, 8)),
        "peak_activation_bytes": peak_activation_bytes(module, (1, 8, 8)),
    }
    names = tuple(expected)
    assert Profiler().count(arch, names) == expected  # built on the meta device
    assert Profiler(device="cpu").count(arch, names) == expected
    assert Profiler().count(module, names, input_shape=(1, 8, 8)) == expected
    assert space.count_params(arch) == expected["params"]
    narrow = Profiler(width=0.5).count(arch, ("params",))["params"]
    assert narrow == count_params(arch.build(width=0.5)) < expected["params"]
    torch.manual_seed(3)
    before = torch.rand(2)
    torch.manual_seed(3)
    Profiler(device="cpu").count(arch)
    assert torch.equal(torch.rand(2), before)  # building left torch's generator alone
    with pytest.raises(ConfigError, match="input shape"):
        Profiler().count(module, ("flops",))
    with pytest.raises(ConfigError, match="counts params"):
        Profiler().count(module, ("latency_ms",))


def test_screen_counts_what_constraints_name_and_asks_the_lookup_first(space, arch):
    params = count_params(arch.build())
    tight = [MetricConstraint.parse(f"params <= {params - 1}"), MetricConstraint.parse("flops >= 1")]
    metrics, violated = Profiler().screen(arch, tight)
    assert metrics["params"] == params and metrics["flops"] > 0
    assert violated == [f"params <= {params - 1}"]
    assert Profiler().screen(arch, [MetricConstraint.parse(f"params <= {params}")])[1] == []
    assert Profiler().screen(arch, []) == ({}, [])

    asked: list[frozenset[str]] = []

    def table(a, names):
        asked.append(frozenset(names))
        return {"latency_ms": 9.0, "params": 1.0}

    latency = [MetricConstraint.parse("latency_ms <= 5"), MetricConstraint.parse("params <= 2")]
    metrics, violated = Profiler(lookup=table).screen(arch, latency)
    assert asked == [frozenset({"latency_ms", "params"})]
    assert metrics == {"latency_ms": 9.0, "params": 1.0} and violated == ["latency_ms <= 5"]

    def broken(a, names):
        raise RuntimeError("no table here")

    # a lookup that fails, or a space bound to no task, leaves those metrics to the estimator
    assert Profiler(lookup=broken).screen(arch, latency[:1]) == ({}, [])
    unbound = nf.spaces.ChainCNN(depth=2).sample(np.random.default_rng(0))
    assert Profiler().screen(unbound, tight) == ({}, [])


def test_latency_of_a_model_and_the_profile_of_a_saved_one():
    model = nf.load("digits-s")
    task = nf.datasets.load("digits")
    fast = {"warmup": 0, "repeats": 2}
    measured = Profiler(runtimes=["torch", "onnx", "int8"], calibration=64, eval_images=100, **fast).measure(
        model, task
    )
    assert {"latency_torch_ms", "latency_onnx_ms", "latency_int8_ms", "int8_speedup"} <= measured.keys()
    assert measured["latency_ms"] == measured["latency_int8_ms"]
    assert 0 <= measured["int8_val_accuracy"] <= 1
    with pytest.raises(ConfigError, match="calibration images"):
        Profiler(runtimes="int8", **fast).measure(model)

    report = Profiler(runtimes=("torch", "onnx"), **fast).profile(model, batches=(1, 3))
    assert report["input_shape"] == [1, 8, 8] and report["params"] == model.metrics["params"]
    assert report["flops"] > 0 and report["peak_activation_bytes"] > 0 and report["threads"] == 1
    rows = [(r["runtime"], r["batch_size"]) for r in report["latency"]]
    assert rows == [("torch_eager", 1), ("onnx_fp32", 1), ("torch_eager", 3), ("onnx_fp32", 3)]


def test_options_and_latency_names():
    assert Profiler.from_options({"runtimes": "int8", "threads": 2}).runtimes == ["int8"]
    for options, match in (
        ({"runtimes": ["tflite"]}, "runtimes"),
        ({"repeats": 1}, "repeats"),
        ({"warmup": -1}, "warmup"),
        ({"device": "gpu"}, "no option"),
    ):
        with pytest.raises(ConfigError, match=match):
            Profiler.from_options(options)
    with pytest.raises(ConfigError, match="mapping"):
        Profiler.from_options(["int8"])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="'meta' or 'cpu'"):
        Profiler(device="cuda")
    assert all(map(is_latency_metric, ("latency_ms", "latency_int8_ms", "int8_speedup")))
    assert not any(map(is_latency_metric, ("params", "val_accuracy", "latency")))
