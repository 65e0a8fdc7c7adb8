"""Classification metrics against scikit-learn on fixtures."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from nasforge.errors import DataError
from nasforge.estimate._metrics import classification_metrics, imbalance, predict_proba, roc_auc


def _fixture(classes: int, n: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    logits = rng.normal(size=(n, classes)) + 1.5 * np.eye(classes)[y]
    if ties:
        logits = np.round(logits)  # many equal scores
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("classes", "seed", "ties"), [(2, 0, False), (2, 1, True), (3, 2, False), (10, 3, True)]
)
def test_metrics_agree_with_scikit_learn(classes: int, seed: int, ties: bool) -> None:
    y, p = _fixture(classes, 300, seed, ties)
    m = classification_metrics(y, p)
    pred = p.argmax(axis=1)
    labels = list(range(classes))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["f1_macro"] == pytest.approx(
        skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0)
    )
    want_auc = skm.roc_auc_score(y, p[:, 1]) if classes == 2 else skm.roc_auc_score(y, p, multi_class="ovr")
    assert m["auc"] == pytest.approx(want_auc)
    assert m["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=labels).tolist()
    prec, rec, f1, sup = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=0)
    for c in labels:
        row = m["per_class"][str(c)]
        assert (row["precision"], row["recall"], row["f1"], row["support"]) == pytest.approx(
            (prec[c], rec[c], f1[c], sup[c])
        )


def test_a_classifier_that_calls_every_image_positive_is_exposed() -> None:
    # 70 normal, 30 pneumonia; a model that says "pneumonia" for most normal images
    y = np.array([0] * 70 + [1] * 30)
    p = np.tile([0.3, 0.7], (100, 1))
    p[:20] = [0.8, 0.2]
    m = classification_metrics(y, p, ["normal", "pneumonia"])
    assert m["per_class"]["normal"]["recall"] == pytest.approx(20 / 70)  # specificity
    assert m["per_class"]["pneumonia"]["recall"] == 1.0
    assert m["balanced_accuracy"] == pytest.approx((20 / 70 + 1) / 2)
    assert m["confusion_matrix"] == [[20, 50], [0, 30]]


def test_auc_is_nan_with_one_class_and_imbalance_ratio() -> None:
    assert math.isnan(roc_auc(np.zeros(5, dtype=int), np.tile([0.6, 0.4], (5, 1))))
    assert imbalance([70, 30]) == pytest.approx(70 / 30) and imbalance([5, 0]) == math.inf


def test_bad_shapes_and_labels_are_data_errors() -> None:
    with pytest.raises(DataError, match="shape"):
        classification_metrics([0, 1], np.ones((3, 2)))
    with pytest.raises(DataError, match=r"labels must lie in 0\.\.1"):
        classification_metrics([0, 2], np.ones((2, 2)))
    with pytest.raises(DataError, match="class names"):
        classification_metrics([0, 1], np.ones((2, 2)), ["a"])


def test_predict_proba_rows_sum_to_one_and_follow_the_logits() -> None:
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.randn(7, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    p = predict_proba(net, x, batch_size=3)
    assert p.shape == (7, 3) and np.allclose(p.sum(axis=1), 1)
    assert (p.argmax(axis=1) == net(x).argmax(dim=1).numpy()).all()
