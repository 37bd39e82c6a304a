"""axiom.train.data: DataLoader, train_test_split, one_hot, make_moons, make_blobs, load_digits."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Tensor
from axiom.train.data import DataLoader, load_digits, make_blobs, make_moons, one_hot, train_test_split

# -- DataLoader ---------------------------------------------------------------------------------


@given(n=st.integers(1, 50), batch=st.integers(1, 20), shuffle=st.booleans(), drop_last=st.booleans())
def test_loader_covers_every_sample_once(n: int, batch: int, shuffle: bool, drop_last: bool) -> None:
    x = np.arange(n * 2).reshape(n, 2)
    loader = DataLoader(x, x[:, 0] * 10, batch_size=batch, shuffle=shuffle, seed=3, drop_last=drop_last)
    batches = list(loader)
    assert len(batches) == len(loader) == (n // batch if drop_last else math.ceil(n / batch))
    assert all(len(xb) == batch for xb, _ in batches[: n // batch])
    seen = np.concatenate([xb[:, 0] for xb, _ in batches]) if batches else np.array([], int)
    assert all((yb == xb[:, 0] * 10).all() for xb, yb in batches)  # rows stay paired
    expected = n // batch * batch if drop_last else n
    assert len(seen) == len(set(seen.tolist())) == expected
    if not shuffle:
        assert seen.tolist() == x[:expected, 0].tolist()


def test_loader_shuffle_is_reproducible_and_fresh_each_epoch() -> None:
    x = np.arange(100)

    def epochs(seed: int | None) -> list[list[int]]:
        loader = DataLoader(x, batch_size=7, shuffle=True, seed=seed)
        return [np.concatenate([xb for xb, _ in loader]).tolist() for _ in range(3)]

    a, b, c = epochs(0), epochs(0), epochs(1)
    assert a == b  # same seed: the same sequence of epochs
    assert a != c
    assert a[0] != a[1] != a[2]  # a new permutation each pass
    assert all(sorted(e) == list(range(100)) for e in a)


def test_loader_accepts_tensors_and_yields_none_without_targets() -> None:
    loader = DataLoader(Tensor(np.ones((5, 3), np.float32)), batch_size=2)
    xb, yb = next(iter(loader))
    assert isinstance(xb, np.ndarray) and xb.shape == (2, 3) and yb is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"y": np.zeros(4)}, "same number of samples, got 5 and 4"),
        ({"batch_size": 0}, "batch_size must be a positive int"),
        ({"batch_size": 2.5}, "batch_size must be a positive int"),
        ({"seed": "x"}, "seed must be an int"),
    ],
)
def test_loader_errors(kwargs: dict, match: str) -> None:
    with pytest.raises((ValueError, TypeError), match=match):
        DataLoader(np.zeros((5, 2)), **kwargs)


# -- train_test_split -----------------------------------------------------------------------------


@given(n=st.integers(2, 200), frac=st.floats(0.01, 0.99))
def test_split_sizes_match_scikit_learn(n: int, frac: float) -> None:
    sk = pytest.importorskip("sklearn.model_selection")
    x = np.arange(n)
    try:
        sk_train, sk_test = sk.train_test_split(x, test_size=frac, random_state=0)
    except ValueError:
        with pytest.raises(ValueError):
            train_test_split(x, test_size=frac, seed=0)
        return
    train, test = train_test_split(x, test_size=frac, seed=0)
    assert (len(train), len(test)) == (len(sk_train), len(sk_test))
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(n))  # a partition


def test_split_keeps_rows_together_and_is_seeded() -> None:
    x = np.arange(40).reshape(20, 2)
    y = x[:, 0] // 2
    a = train_test_split(x, y, seed=5)
    b = train_test_split(x, y, seed=5)
    c = train_test_split(x, y, seed=6)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not np.array_equal(a[1], c[1])
    x_tr, x_te, y_tr, y_te = a
    assert (x_tr[:, 0] // 2 == y_tr).all() and (x_te[:, 0] // 2 == y_te).all()
    assert len(x_te) == 5  # ceil(0.25 * 20)


def test_split_without_shuffle_takes_the_tail() -> None:
    train, test = train_test_split(np.arange(10), test_size=3, shuffle=False)
    assert train.tolist() == list(range(7)) and test.tolist() == [7, 8, 9]


def test_stratified_split_keeps_class_proportions() -> None:
    y = np.repeat([0, 1, 2], [60, 30, 10])
    _, y_test = train_test_split(y, test_size=0.2, seed=0, stratify=y)
    assert np.bincount(y_test).tolist() == [12, 6, 2]
    _, y_test = train_test_split(y, test_size=0.25, seed=0, stratify=y)  # 25 of 100: 15, 7.5, 2.5
    counts = np.bincount(y_test, minlength=3)
    assert counts.sum() == 25 and abs(counts - [15, 7.5, 2.5]).max() <= 1


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((np.arange(5), np.arange(4)), {}, "array 1 has 5, array 2 has 4"),
        ((np.arange(5),), {"test_size": 1.0}, r"test_size must be in \(0, 1\)"),
        ((np.arange(5),), {"test_size": 5}, "between 1 and 4"),
        ((np.arange(5),), {"stratify": [0, 0, 1, 1, 1], "shuffle": False}, "stratify needs shuffle=True"),
        ((np.arange(5),), {"stratify": [0, 0, 0, 0, 1]}, "class 1 of stratify has 1 member"),
        ((), {}, "at least one array"),
    ],
)
def test_split_errors(args: tuple, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        train_test_split(*args, **kwargs)


# -- one_hot --------------------------------------------------------------------------------------


@given(labels=st.lists(st.integers(0, 9), min_size=1, max_size=30), extra=st.integers(0, 3))
def test_one_hot_round_trips(labels: list[int], extra: int) -> None:
    c = max(labels) + 1 + extra
    out = one_hot(np.array(labels), c)
    assert out.shape == (len(labels), c) and out.dtype == np.float32
    assert out.argmax(1).tolist() == labels and (out.sum(1) == 1).all()


def test_one_hot_shapes_and_dtypes() -> None:
    assert one_hot(np.array([[0, 1], [2, 0]])).shape == (2, 2, 3)
    assert one_hot([1.0, 0.0], 2, dtype="int64").tolist() == [[0, 1], [1, 0]]  # integral floats are labels


@pytest.mark.parametrize(
    ("labels", "num_classes", "match"),
    [
        ([0, 3], 3, r"label 3 \(at index 1\) is out of range \[0, 3\)"),
        ([-1, 0], None, r"label -1 \(at index 0\) is out of range"),
        ([0.5], 2, "labels must be integers, got 0.5"),
        ([np.nan], 2, "labels must be integers"),
        (["a"], 2, "labels must be integers"),
        ([0], 0, "num_classes must be a positive int"),
    ],
)
def test_one_hot_errors(labels: list, num_classes: int | None, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        one_hot(labels, num_classes)


# -- toy data sets --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 7, 100])
def test_moons_lie_on_the_two_half_circles(n: int) -> None:
    x, y = make_moons(n, seed=0)
    assert x.shape == (n, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y, minlength=2).tolist() == [n // 2, n - n // 2]  # as scikit-learn
    outer, inner = x[y == 0].astype(np.float64), x[y == 1].astype(np.float64)
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-6)
    assert (outer[:, 1] >= -1e-6).all() and (inner[:, 1] <= 0.5 + 1e-6).all()
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0, atol=1e-6)


def test_moons_noise_and_seed() -> None:
    clean, y0 = make_moons(2000, seed=1, shuffle=False)
    noisy, y1 = make_moons(2000, noise=0.1, seed=1, shuffle=False)
    assert (y0 == y1).all()
    assert abs(float((noisy - clean).std()) - 0.1) < 0.01
    again, _ = make_moons(2000, noise=0.1, seed=1, shuffle=False)
    assert np.array_equal(noisy, again)
    assert make_moons((3, 5), shuffle=False)[1].tolist() == [0] * 3 + [1] * 5
    with pytest.raises(ValueError, match="noise must be >= 0"):
        make_moons(10, noise=-1.0)


def test_moons_match_scikit_learn_without_noise() -> None:
    sk = pytest.importorskip("sklearn.datasets")
    x, y = make_moons(31, shuffle=False, dtype="float64")
    sx, sy = sk.make_moons(31, shuffle=False)
    np.testing.assert_allclose(x, sx, atol=1e-12)
    assert (y == sy).all()


def test_blobs_counts_centres_and_spread() -> None:
    sk = pytest.importorskip("sklearn.datasets")
    x, y = make_blobs(3001, centers=4, n_features=3, cluster_std=0.5, seed=0)
    _, sy = sk.make_blobs(3001, centers=4, n_features=3, random_state=0)
    assert x.shape == (3001, 3) and x.dtype == np.float32
    assert np.bincount(y).tolist() == np.bincount(sy).tolist()  # the same split of samples over blobs
    for k in range(4):
        pts = x[y == k].astype(np.float64)
        assert (abs(pts.mean(0)) <= 10.1).all()  # centres drawn in center_box
        assert abs(pts.std(0) - 0.5).max() < 0.05


def test_blobs_given_centres_and_per_blob_sizes() -> None:
    centres = np.array([[0.0, 0.0], [20.0, 20.0]])
    x, y = make_blobs([10, 30], centers=centres, cluster_std=[0.1, 1.0], seed=2, shuffle=False)
    assert y.tolist() == [0] * 10 + [1] * 30
    assert abs(x[:10]).max() < 1.0 and abs(x[10:] - 20).max() < 5.0
    x2, _ = make_blobs([10, 30], centers=centres, cluster_std=[0.1, 1.0], seed=2, shuffle=False)
    assert np.array_equal(x, x2)
    assert make_blobs(10, seed=0)[0].shape == (10, 2) and set(make_blobs(10, seed=0)[1].tolist()) == {0, 1, 2}
    with pytest.raises(ValueError, match="2 sample counts for 3 centres"):
        make_blobs([1, 2], centers=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="cluster_std must be finite and >= 0"):
        make_blobs(10, cluster_std=-1.0)


# -- digits ---------------------------------------------------------------------------------------


def test_load_digits_is_nhwc_float_in_unit_range() -> None:
    sk = pytest.importorskip("sklearn.datasets")
    x, y = load_digits()
    assert x.shape == (1797, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    ref = sk.load_digits()
    np.testing.assert_array_equal(x[..., 0] * 16, ref.images)
    assert (y == ref.target).all() and np.bincount(y).min() >= 170


def test_load_digits_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name: str, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("sklearn"):
            raise ImportError("No module named 'sklearn'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        load_digits()
