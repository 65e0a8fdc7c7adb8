"""The tracker registry and what every tracker shares: names, options, missing packages."""

from __future__ import annotations

import sys

import pytest

from nasforge.errors import ConfigError, UnknownComponentError
from nasforge.registry import TRACKERS
from nasforge.track import MLflowCallback, TensorBoardCallback, Tracker, make_tracker


@pytest.mark.parametrize("name", TRACKERS.names())
def test_every_registered_tracker_is_a_tracker(name: str) -> None:
    pytest.importorskip(TRACKERS.get(name).module)
    tracker = make_tracker(name)
    assert isinstance(tracker, Tracker) and callable(tracker)
    tracker.close()  # nothing opened yet: nothing to do


def test_make_tracker_names_and_options() -> None:
    pytest.importorskip("tensorboard")
    tb = make_tracker("tb", log_dir="somewhere")
    assert isinstance(tb, TensorBoardCallback) and tb.log_dir == "somewhere"
    with pytest.raises(
        UnknownComponentError, match=r"unknown tracker 'tensorbord'\. Did you mean 'tensorboard'"
    ):
        make_tracker("tensorbord")
    with pytest.raises(
        ConfigError, match=r"tracker 'tensorboard' has no option 'logdir'\. Did you mean 'log_dir'"
    ):
        make_tracker("tensorboard", logdir="x")


@pytest.mark.parametrize(
    ("cls", "module", "extra"),
    [(MLflowCallback, "mlflow", "mlflow"), (TensorBoardCallback, "tensorboard", "tensorboard")],
)
def test_a_missing_package_says_which_extra_to_install(
    cls: type[Tracker], module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what an uninstalled package looks like to import
    with pytest.raises(ConfigError, match=rf"pip install 'nasforge\[{extra}\]'"):
        cls()


def test_import_nasforge_imports_no_tracking_package() -> None:
    import subprocess

    code = (
        "import sys, nasforge\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mlflow', 'tensorboard'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
