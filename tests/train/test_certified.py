"""Certified (IBP) training: the bounds contain every sampled output, match the verifier's IBP,
carry gradients into the weights, and IBP training buys verified accuracy that natural training does not."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import axiom
from axiom import (
    Activation,
    Affine,
    AvgPool2d,
    BatchNorm,
    Concat,
    Conv2d,
    Dense,
    DepthwiseConv2d,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    LogSoftmax,
    MaxPool2d,
    Permute,
    Reshape,
    Residual,
    Sequential,
    Softmax,
    Tensor,
    manual_seed,
)
from axiom.backends.base import ACTIVATIONS
from axiom.train.certified import (
    EpsilonSchedule,
    IBPTraining,
    IBPUnsupportedError,
    interval_bounds,
    verified_accuracy,
    worst_case_logits,
    worst_case_margins,
)
from axiom.train.losses import cross_entropy
from axiom.verify import Box
from axiom.verify.bounds import compute_bounds

# -- helpers ----------------------------------------------------------------------------------------


def _randomize_batchnorms(model, rng):
    """Non-trivial running statistics and affine parameters (negative gammas flip the interval)."""
    for m in model.modules():
        if isinstance(m, BatchNorm):
            c = m.num_features
            m.running_mean.data = rng.normal(0, 0.5, c).astype(m.running_mean.dtype)
            m.running_var.data = rng.uniform(0.3, 2.0, c).astype(m.running_var.dtype)
            m.weight.data = rng.normal(0, 1.0, c).astype(m.weight.dtype)
            m.bias.data = rng.normal(0, 0.5, c).astype(m.bias.dtype)


def _samples(lo, hi, n, rng):
    """``n`` points per box: uniform inside and random vertices (where ReLU-like extremes sit)."""
    lo, hi = np.asarray(lo), np.asarray(hi)
    u = rng.random((n, *lo.shape))
    u[: n // 2] = np.round(u[: n // 2])  # vertices
    return lo + u * (hi - lo)


def _worst_violation(model, lo_out, hi_out, xs):
    """Largest amount by which any output of ``xs`` (``(n, batch, ...)``) leaves ``[lo_out, hi_out]``."""
    worst = 0.0
    for x in xs:
        y = model(Tensor(x)).numpy().astype(np.float64)
        worst = max(worst, float(np.max(lo_out - y)), float(np.max(y - hi_out)))
    return worst


def _input(shape, seed, dtype=np.float64):
    return np.random.default_rng(seed).random(shape).astype(dtype)


def _architectures():
    """(name, model factory, per-example input shape) covering every interval rule."""
    return [
        ("mlp-relu-tanh", lambda: Sequential(Dense(6, 16, "relu"), Dense(16, 12, "tanh"), Dense(12, 4)), (6,)),
        (
            "conv-bn-maxpool-avgpool",
            lambda: Sequential(
                Affine(scale=2.0, shift=-1.0),
                Conv2d(2, 6, 3, padding=1),
                BatchNorm(),
                Activation("relu"),
                MaxPool2d(2),
                Conv2d(6, 8, 3, stride=2, padding="same", groups=2, activation="leaky_relu"),
                AvgPool2d(2, stride=1),
                Flatten(),
                Dense(3),
                input_shape=(None, 8, 8, 2),
            ),
            (8, 8, 2),
        ),
        (
            "residual-depthwise-gap",
            lambda: Sequential(
                Conv2d(3, 8, 3, padding=1, activation="relu"),
                Residual(Conv2d(8, 8, 3, padding=2, dilation=2), BatchNorm(), Activation("relu"), Conv2d(8, 8, 1)),
                MaxPool2d(3, stride=1, padding=1),
                AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
                DepthwiseConv2d(3, padding=1, depth_multiplier=2, activation="relu6"),
                Residual(Sequential(BatchNorm(), Activation("elu"))),
                GlobalAvgPool(),
                Dense(5),
            ),
            (6, 6, 3),
        ),
        (
            "concat-reshape-permute-dropout",
            lambda: Sequential(
                Dense(8, 12, "sigmoid"),
                Concat(Dense(12, 6, "softplus"), Sequential(Dropout(0.3), Dense(12, 6, "gelu"))),
                Reshape((3, 4)),
                Permute((1, 0)),
                Flatten(),
                Dense(12, 4, "silu"),
                Dense(3),
            ),
            (8,),
        ),
        ("softmax-out", lambda: Sequential(Dense(5, 10, "mish"), Dense(10, 4), Softmax()), (5,)),
        ("logsoftmax-out", lambda: Sequential(Dense(5, 10, "hardswish"), Dense(10, 4), LogSoftmax()), (5,)),
    ]


ARCHS = _architectures()

# -- (a) soundness: the bounds contain every sampled output ---------------------------------------


@pytest.mark.parametrize("name,factory,shape", ARCHS, ids=[a[0] for a in ARCHS])
@pytest.mark.parametrize("eps", [0.0, 0.03, 0.3])
def test_bounds_contain_every_sampled_output_float64(name, factory, shape, eps):
    manual_seed(3)
    model = factory().to("float64")
    _randomize_batchnorms(model, np.random.default_rng(4))
    x = _input((3, *shape), 5)
    lo_in, hi_in = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
    lo, hi = interval_bounds(model, lo_in, hi_in)
    assert lo.shape == hi.shape == model(Tensor(x)).shape
    xs = _samples(lo_in, hi_in, 200, np.random.default_rng(6))
    assert _worst_violation(model, lo.numpy(), hi.numpy(), xs) <= 1e-12
    if eps == 0.0:  # a point box: the bounds are the output itself (up to quasi-convex minima and softmax)
        y = model(Tensor(x)).numpy()
        assert float(np.max(hi.numpy() - lo.numpy())) < (0.4 if name != "mlp-relu-tanh" else 1e-12)
        assert np.all(lo.numpy() <= y + 1e-12) and np.all(y <= hi.numpy() + 1e-12)


@pytest.mark.parametrize("name,factory,shape", ARCHS[:3], ids=[a[0] for a in ARCHS[:3]])
def test_bounds_contain_every_sampled_output_float32(name, factory, shape):
    # float32 bounds are not rounded outward (they are for training); the slack covers rounding.
    manual_seed(7)
    model = factory()
    _randomize_batchnorms(model, np.random.default_rng(8))
    x = _input((4, *shape), 9, np.float32)
    lo_in, hi_in = x - 0.05, x + 0.05
    lo, hi = interval_bounds(model, lo_in, hi_in)
    assert lo.dtype == np.float32
    xs = _samples(lo_in, hi_in, 100, np.random.default_rng(10)).astype(np.float32)
    scale = 1.0 + float(np.max(np.abs(hi.numpy())))
    assert _worst_violation(model, lo.numpy(), hi.numpy(), xs) <= 1e-5 * scale


def test_the_containment_check_can_fail():
    """For one affine layer IBP is exact (vertices reach the bounds), so bounds of a smaller box are caught."""
    manual_seed(0)
    model = Dense(4, 3).to("float64")
    x = _input((2, 4), 1)
    lo, hi = interval_bounds(model, x - 0.05, x + 0.05)
    xs = _samples(x - 0.05, x + 0.05, 400, np.random.default_rng(2))
    assert _worst_violation(model, lo.numpy(), hi.numpy(), xs) <= 1e-12
    ys = np.stack([model(Tensor(v)).numpy() for v in xs])
    np.testing.assert_allclose(ys.max(axis=0), hi.numpy(), atol=1e-12)  # tight: attained at a vertex
    np.testing.assert_allclose(ys.min(axis=0), lo.numpy(), atol=1e-12)
    wider = _samples(x - 0.06, x + 0.06, 400, np.random.default_rng(2))
    assert _worst_violation(model, lo.numpy(), hi.numpy(), wider) > 1e-3


@given(
    kind=st.sampled_from(ACTIVATIONS),
    alpha=st.sampled_from([0.01, 0.5, -0.3]),
    center=st.floats(-4, 4),
    width=st.floats(0, 3),
)
def test_every_activation_is_bounded_soundly(kind, alpha, center, width):
    layer = Activation(kind, alpha=alpha if kind in ("leaky_relu", "elu") else None).to("float64")
    lo_in = np.array([[center - width]])
    hi_in = np.array([[center + width]])
    lo, hi = interval_bounds(layer, lo_in, hi_in)
    z = np.linspace(lo_in, hi_in, 2001).reshape(-1, 1)
    y = layer(Tensor(z)).numpy()
    assert lo.item() <= y.min() + 1e-12 and y.max() <= hi.item() + 1e-12
    assert hi.item() - y.max() <= 1e-9  # the upper end is exact: an end point is the maximum
    if kind not in ("gelu", "gelu_tanh", "silu", "mish", "hardswish") and not (
        kind in ("leaky_relu", "elu") and alpha < 0
    ):
        assert y.min() - lo.item() <= 1e-9  # monotone: the lower end is exact too


def test_training_mode_batchnorm_uses_the_reference_batch_as_an_affine_map(monkeypatch):
    """In training mode the bounds hold for the map BatchNorm applies with the reference batch's statistics."""
    manual_seed(11)
    model = Sequential(
        Conv2d(2, 4, 3, padding=1),
        BatchNorm(),
        Activation("relu"),
        Residual(Conv2d(4, 4, 3, padding=1), BatchNorm()),
        Flatten(),
        Dense(3),
        BatchNorm(),
        input_shape=(None, 5, 5, 2),  # built now: the copy below must share the weights
    ).to("float64")
    _randomize_batchnorms(model, np.random.default_rng(12))
    model.train()
    x_ref = _input((6, 5, 5, 2), 13)
    # Freeze a copy: every BatchNorm's running statistics := the reference batch's (biased) ones.
    frozen = copy.deepcopy(model)
    stats = {}
    original = BatchNorm.forward

    def recording(self, x):
        axes = tuple(range(x.ndim - 1))
        stats[id(self)] = (x.data.mean(axis=axes), x.data.var(axis=axes))
        return original(self, x)

    monkeypatch.setattr(BatchNorm, "forward", recording)
    frozen(Tensor(x_ref))
    monkeypatch.setattr(BatchNorm, "forward", original)
    for m in frozen.modules():
        if isinstance(m, BatchNorm):
            m.running_mean.data, m.running_var.data = stats[id(m)]
    frozen.eval()
    before = [m.running_mean.numpy().copy() for m in model.modules() if isinstance(m, BatchNorm)]
    lo_in, hi_in = np.clip(x_ref - 0.05, 0, 1), np.clip(x_ref + 0.05, 0, 1)
    lo, hi = interval_bounds(model, lo_in, hi_in, reference=x_ref)
    after = [m.running_mean.numpy() for m in model.modules() if isinstance(m, BatchNorm)]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))  # no running-stat update
    xs = _samples(lo_in, hi_in, 100, np.random.default_rng(14))
    assert _worst_violation(frozen, lo.numpy(), hi.numpy(), xs) <= 1e-12
    # Exactly the eval-mode bounds of the frozen copy (the same affine maps).
    lo_frozen, hi_frozen = interval_bounds(frozen, lo_in, hi_in)
    np.testing.assert_allclose(lo.numpy(), lo_frozen.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(hi.numpy(), hi_frozen.numpy(), rtol=1e-10, atol=1e-12)
    # The eval-mode bounds (running statistics) are a different map: they differ.
    lo_eval, _ = interval_bounds(model.eval(), lo_in, hi_in)
    assert not np.allclose(lo_eval.numpy(), lo.numpy())


# -- (b) the same bounds as the verifier's IBP ------------------------------------------------------


@pytest.mark.parametrize("name,factory,shape", ARCHS, ids=[a[0] for a in ARCHS])
def test_bounds_equal_the_verifier_ibp(name, factory, shape):
    """float64: equal to axiom.verify's IBP up to rounding, and never looser (the verifier rounds outward)."""
    manual_seed(21)
    model = factory().to("float64")
    _randomize_batchnorms(model, np.random.default_rng(22))
    x = _input((3, *shape), 23)
    lo_in, hi_in = np.clip(x - 0.04, 0, 1), np.clip(x + 0.04, 0, 1)
    lo, hi = interval_bounds(model, lo_in, hi_in)
    for i in range(len(x)):
        ref = compute_bounds(model, Box(lo_in[i], hi_in[i]), method="ibp")
        mine_lo, mine_hi = lo.numpy()[i], hi.numpy()[i]
        scale = 1.0 + np.abs(ref.upper).max() + np.abs(ref.lower).max()
        assert np.all(ref.lower <= mine_lo + 1e-13 * scale) and np.all(mine_hi <= ref.upper + 1e-13 * scale)
        np.testing.assert_allclose(mine_lo, ref.lower, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(mine_hi, ref.upper, rtol=1e-9, atol=1e-9)


# -- (c) gradients flow into the weights --------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        lambda: Sequential(Dense(3, 6, "tanh"), Dense(6, 6, "gelu"), Dense(6, 2)),
        lambda: Sequential(Conv2d(1, 3, 3, padding=1), BatchNorm(), Activation("softplus"), Flatten(), Dense(2)),
    ],
    ids=["mlp", "conv-bn"],
)
@pytest.mark.parametrize("training", [False, True])
def test_bound_gradients_match_finite_differences(factory, training):
    manual_seed(31)
    model = factory().to("float64")
    _randomize_batchnorms(model, np.random.default_rng(32))
    model.train(training)
    shape = (4, 3) if isinstance(model[0], Dense) else (4, 4, 4, 1)
    x = _input(shape, 33)
    rng = np.random.default_rng(34)
    c_lo, c_hi = rng.normal(size=(4, 2)), rng.normal(size=(4, 2))

    def objective():
        lo, hi = interval_bounds(model, x - 0.1, x + 0.1, reference=x)
        return (lo * c_lo).sum() + (hi * c_hi).sum()

    model.zero_grad()
    objective().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.any(p.grad.numpy() != 0), name
        for idx in list(np.ndindex(p.shape))[:: max(1, p.size // 4)]:
            old = p.data[idx]
            p.data[idx] = old + 1e-6
            up = objective().item()
            p.data[idx] = old - 1e-6
            down = objective().item()
            p.data[idx] = old
            assert abs((up - down) / 2e-6 - p.grad.data[idx]) <= 1e-5 * (1 + abs(p.grad.data[idx])), (name, idx)


def test_ibp_loss_gradients_reach_every_parameter_and_follow_the_schedule():
    manual_seed(41)
    model = Sequential(Conv2d(1, 4, 3, activation="relu"), BatchNorm(), MaxPool2d(2), Flatten(), Dense(3)).train()
    x = _input((8, 6, 6, 1), 42, np.float32)
    y = np.arange(8) % 3
    ibp = IBPTraining(0.1, eps_schedule=EpsilonSchedule(warmup=0.25, ramp=0.5), kappa_start=1.0, kappa_end=0.5)
    natural = cross_entropy(model(x), y)
    assert ibp.loss(model, x, y, natural_loss=natural, progress=0.1) is natural  # warm-up: natural only
    assert ibp.last == {"eps": 0.0, "kappa": 1.0, "robust_loss": None}
    half = ibp.loss(model, x, y, natural_loss=natural, progress=0.5)
    assert ibp.last["eps"] == pytest.approx(0.05) and ibp.last["kappa"] == pytest.approx(0.75)
    expected = 0.75 * natural.item() + 0.25 * ibp.last["robust_loss"]
    assert half.item() == pytest.approx(expected, rel=1e-5)
    model.zero_grad()
    full = ibp.loss(model, x, y, loss_fn=cross_entropy, progress=1.0)
    assert ibp.last["eps"] == pytest.approx(0.1) and ibp.last["kappa"] == 0.5
    assert ibp.last["robust_loss"] > natural.item()  # the worst case is worse than the clean case
    full.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and np.all(np.isfinite(p.grad.numpy())) and np.any(p.grad.numpy() != 0), name


def test_worst_case_logits_and_verified_accuracy_agree_with_the_bounds():
    lo = Tensor([[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]])
    hi = Tensor([[2.0, 0.5, 0.75], [1.0, 3.0, 1.0]])
    assert worst_case_logits(lo, hi, np.array([0, 1])).tolist() == [[1.0, 0.5, 0.75], [1.0, 0.0, 1.0]]
    assert worst_case_logits(lo, hi, np.eye(3)[[0, 1]]).tolist() == [[1.0, 0.5, 0.75], [1.0, 0.0, 1.0]]
    manual_seed(51)
    model = Sequential(Dense(4, 8, "relu"), Dense(8, 3)).to("float64")
    x = _input((50, 4), 52)
    y = model(Tensor(x)).numpy().argmax(axis=1)
    assert verified_accuracy(model, x, y, eps=0.0) == 1.0
    accs = [verified_accuracy(model, x, y, eps=e) for e in (0.001, 0.01, 0.1, 1.0)]
    assert accs == sorted(accs, reverse=True) and accs[-1] == 0.0
    lo_b, hi_b = interval_bounds(model, np.clip(x - 0.01, 0, 1), np.clip(x + 0.01, 0, 1))
    z = worst_case_logits(lo_b, hi_b, y).numpy()
    assert accs[1] == pytest.approx(np.mean(z.argmax(axis=1) == y))


# -- errors ---------------------------------------------------------------------------------------------


def test_unsupported_layers_and_bad_input_give_clear_errors():
    with pytest.raises(IBPUnsupportedError, match=r"layer 2\.2 \(LayerNorm\) has no interval rule"):
        interval_bounds(Sequential(Dense(2, 4), Residual(Dense(4, 4), LayerNorm(4))), np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(IBPUnsupportedError, match=r"layer 1 \(Embedding\)"):
        interval_bounds(Sequential(Embedding(5, 3), Flatten()), np.zeros((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match=r"lower <= upper everywhere, but at index \(0, 1\)"):
        interval_bounds(Dense(2, 2), np.array([[0.0, 1.0]]), np.array([[1.0, 0.0]]))
    with pytest.raises(ValueError, match="lower has shape"):
        interval_bounds(Dense(2, 2), np.zeros((1, 2)), np.zeros((2, 2)))
    with pytest.raises(axiom.ShapeError, match="Dense"):
        interval_bounds(Dense(3, 2), np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="eps must be"):
        IBPTraining(-0.1)
    with pytest.raises(ValueError, match="kappa_end must be in"):
        IBPTraining(0.1, kappa_end=2.0)
    with pytest.raises(ValueError, match="warmup must be a fraction"):
        EpsilonSchedule(warmup=1.5)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        IBPTraining(0.1).loss(Dense(2, 3), np.zeros((2, 2), np.float32), np.array([0, 3]))


# -- (d) IBP training buys verified accuracy ------------------------------------------------------------


def _train(model, x, y, certified, epochs, lr=0.1, batch=32, seed=0):
    """A minimal SGD loop driving ``certified.loss`` the way fit() does."""
    rng = np.random.default_rng(seed)
    total, step = epochs * int(np.ceil(len(x) / batch)), 0
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for s in range(0, len(x), batch):
            idx = order[s : s + batch]
            xb, yb = Tensor(x[idx]), y[idx]
            out = model(xb)
            loss = cross_entropy(out, yb)
            if certified is not None:
                loss = certified.loss(
                    model, xb, yb, cross_entropy, natural_loss=loss, outputs=out, progress=step / total
                )
            model.zero_grad()
            loss.backward()
            for p in model.parameters():
                p.data = p.data - lr * p.grad.data
            step += 1
    return model.eval()


def test_ibp_training_gives_more_verified_accuracy_than_natural_training():
    from axiom.train.data import make_blobs

    x, y = make_blobs(600, centers=[[0.25, 0.25], [0.75, 0.3], [0.5, 0.8]], cluster_std=0.05, seed=0)
    x = np.clip(x, 0, 1).astype(np.float32)
    xtr, ytr, xte, yte = x[:400], y[:400], x[400:], y[400:]
    eps = 0.1

    def make():
        manual_seed(0)
        return Sequential(Dense(2, 32, "relu"), Dense(32, 32, "relu"), Dense(32, 3))

    natural = _train(make(), xtr, ytr, None, epochs=15)
    ibp = IBPTraining(eps, eps_schedule=EpsilonSchedule(warmup=0.1, ramp=0.5))
    certified = _train(make(), xtr, ytr, ibp, epochs=15)
    acc = {n: float(np.mean(m(xte).numpy().argmax(1) == yte)) for n, m in (("nat", natural), ("ibp", certified))}
    ver = {n: verified_accuracy(m, xte, yte, eps) for n, m in (("nat", natural), ("ibp", certified))}
    assert acc["nat"] > 0.95 and acc["ibp"] > 0.9, acc
    assert ver["ibp"] >= ver["nat"] + 0.3, ver
    assert ibp.metrics(certified, xte, yte)["verified_acc"] == ver["ibp"]


def test_fit_with_certified_logs_verified_accuracy_and_raises_it():
    from axiom.train import SGD, fit
    from axiom.train.data import make_blobs

    x, y = make_blobs(300, centers=[[0.25, 0.25], [0.75, 0.3], [0.5, 0.8]], cluster_std=0.06, seed=1)
    x = np.clip(x, 0, 1).astype(np.float32)
    manual_seed(0)
    model = Sequential(Dense(2, 32, "relu"), Dense(32, 3))
    ibp = IBPTraining(0.08, eps_schedule=EpsilonSchedule(warmup=0.1, ramp=0.5))
    history = fit(
        model,
        x[:200],
        y[:200],
        optimizer=SGD(model.parameters(), lr=0.1),
        epochs=12,
        batch_size=32,
        validation_data=(x[200:], y[200:]),
        certified=ibp,
        seed=0,
        verbose=False,
    )
    ver = history.history["val_verified_acc"]
    assert len(ver) == 12 and ver[-1] > 0.7 and ver[-1] > ver[0] + 0.3
    assert ver[-1] == pytest.approx(verified_accuracy(model, x[200:], y[200:], 0.08))


MARGIN_ARCHS = [a for a in ARCHS if "softmax" not in a[0]]


@pytest.mark.parametrize("name,factory,shape", MARGIN_ARCHS, ids=[a[0] for a in MARGIN_ARCHS])
def test_margin_bounds_are_sound_tighter_and_prove_what_the_verifier_ibp_proves(name, factory, shape):
    manual_seed(61)
    model = factory().to("float64")
    _randomize_batchnorms(model, np.random.default_rng(62))
    x = _input((12, *shape), 63)
    y = model(Tensor(x)).numpy().argmax(axis=1)
    for eps in (0.002, 0.02):
        lo_in, hi_in = np.clip(x - eps, 0, 1), np.clip(x + eps, 0, 1)
        margins = worst_case_margins(model, lo_in, hi_in, y).numpy()
        lo, hi = interval_bounds(model, lo_in, hi_in)
        plain = hi.numpy() - lo.numpy()[np.arange(len(y)), y][:, None]
        assert np.all(margins[np.arange(len(y)), y] == 0) and np.all(margins <= plain + 1e-12)
        for xs in _samples(lo_in, hi_in, 100, np.random.default_rng(64)):
            z = model(Tensor(xs)).numpy()
            assert np.all(z - z[np.arange(len(y)), y][:, None] <= margins + 1e-12)
        # Verified examples against the verifier's IBP on the same box with the spec matrix C (rows z_y - z_j).
        ours = [
            verified_accuracy(model, x[i : i + 1], y[i : i + 1], eps, input_range=(0, 1)) == 1.0 for i in range(len(x))
        ]
        n = int(np.prod(model(Tensor(x[:1])).shape))
        theirs = []
        for i in range(len(x)):
            C = -np.eye(n)
            C[:, y[i]] += 1.0
            C = np.delete(C, y[i], axis=0)  # rows z_y - z_j
            theirs.append(bool(np.all(compute_bounds(model, Box(lo_in[i], hi_in[i]), "ibp", C=C).lower > 0)))
        # The verifier folds the spec through every trailing linear op, we through the last Dense: the same
        # when a nonlinearity precedes that Dense, else ours may be looser (but never claims more).
        if name in ("mlp-relu-tanh", "concat-reshape-permute-dropout"):
            assert ours == theirs, (eps, ours, theirs)
        else:
            assert all(t or not o for o, t in zip(ours, theirs)), (eps, ours, theirs)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_models_get_float32_bounds_and_half_gradients(dtype):
    """Mixed precision: bounds of a float16/bfloat16 model are computed in float32 from its (rounded) weights."""
    manual_seed(71)
    half = ARCHS[1][1]().train()
    _randomize_batchnorms(half, np.random.default_rng(72))
    half.to(dtype)
    ref = copy.deepcopy(half).to("float32")  # the same rounded weights, in float32
    x = _input((4, 8, 8, 2), 73, np.float32)
    y = np.arange(4) % 3
    lo_in, hi_in = np.clip(x - 0.03, 0, 1), np.clip(x + 0.03, 0, 1)
    lo, hi = interval_bounds(half, lo_in.astype(dtype), hi_in.astype(dtype), reference=x.astype(dtype))
    lo_ref, hi_ref = interval_bounds(
        ref,
        lo_in.astype(dtype).astype(np.float32),
        hi_in.astype(dtype).astype(np.float32),
        reference=x.astype(dtype).astype(np.float32),
    )
    assert lo.dtype == hi.dtype == np.float32
    np.testing.assert_allclose(lo.numpy(), lo_ref.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(hi.numpy(), hi_ref.numpy(), rtol=1e-5, atol=1e-5)
    loss = IBPTraining(0.03).loss(half, x.astype(dtype), y, progress=1.0)
    loss.backward()
    for name, p in half.named_parameters():
        assert (
            p.grad is not None and p.grad.dtype == p.dtype and np.all(np.isfinite(p.grad.numpy().astype(np.float32)))
        ), name


@given(
    widths=st.lists(st.integers(1, 12), min_size=1, max_size=3),
    kinds=st.lists(st.sampled_from(ACTIVATIONS), min_size=3, max_size=3),
    eps=st.floats(0.0, 0.5),
    seed=st.integers(0, 2**16),
)
def test_random_mlps_are_bounded_soundly(widths, kinds, eps, seed):
    manual_seed(seed)
    layers, n_in = [], 3
    for w, kind in zip(widths, kinds):
        layers.append(Dense(n_in, w, kind))
        n_in = w
    model = Sequential(*layers, Dense(n_in, 2)).to("float64")
    x = np.random.default_rng(seed).normal(size=(2, 3))
    lo, hi = interval_bounds(model, x - eps, x + eps)
    xs = _samples(x - eps, x + eps, 64, np.random.default_rng(seed + 1))
    assert _worst_violation(model, lo.numpy(), hi.numpy(), xs) <= 1e-12
