"""Losses (axiom.train.losses): values and gradients equal torch.nn.functional, plus the error cases.

Every loss is compared with torch for every reduction, with Hypothesis drawing shapes and a data
seed; float64 is compared tightly (it isolates formula mistakes from rounding), float32 and
float16 inputs at the looser tolerances of their precision.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from axiom import Dense, Sequential, Tensor, relu
from axiom.backends import available_backends, use_backend
from axiom.train import losses as L

torch = pytest.importorskip("torch")
TF = torch.nn.functional

REDUCTIONS = ["mean", "sum", "none"]
shapes = st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple)
seeds = st.integers(0, 2**32 - 1)


def compare(ours, theirs, args, grads, reduction, rng, rtol=1e-10, atol=1e-12, **kwargs):
    """Run both losses on the same arrays: values agree, and so do the gradients of ``args[i]`` where ``grads[i]``."""
    ax = [Tensor(a, requires_grad=g) if g else a for a, g in zip(args, grads)]
    th = [torch.tensor(a, requires_grad=g) for a, g in zip(args, grads)]
    out = ours(*ax, reduction=reduction, **kwargs)
    ref = theirs(*th, reduction=reduction, **kwargs)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), rtol=rtol, atol=atol)
    upstream = rng.standard_normal(ref.shape)  # a random vector-Jacobian product also checks "none"
    (out * Tensor(upstream.astype(out.dtype))).sum().backward()
    (ref * torch.tensor(upstream, dtype=ref.dtype)).sum().backward()
    for i, (a, t) in enumerate(zip(ax, th)):
        if grads[i]:
            assert a.grad is not None and a.grad.dtype == a.dtype, f"argument {i} got no gradient of its dtype"
            np.testing.assert_allclose(a.grad.numpy(), t.grad.numpy(), rtol=rtol, atol=atol, err_msg=f"grad {i}")
    return out


# -- regression losses --------------------------------------------------------------------------------


@given(shape=shapes, seed=seeds, reduction=st.sampled_from(REDUCTIONS), which=st.sampled_from(["mse", "l1", "huber"]))
def test_regression_losses_match_torch(shape, seed, reduction, which):
    rng = np.random.default_rng(seed)
    pred = rng.standard_normal(shape) * 2
    target = rng.standard_normal(shape) * 2
    target.flat[0] = pred.flat[0]  # a zero error: where |d| and Huber are not smooth
    kwargs = {"delta": float(rng.uniform(0.2, 2.0))} if which == "huber" else {}
    ours = {"mse": L.mse_loss, "l1": L.l1_loss, "huber": L.huber_loss}[which]
    theirs = {"mse": TF.mse_loss, "l1": TF.l1_loss, "huber": TF.huber_loss}[which]
    compare(ours, theirs, [pred, target], [True, True], reduction, rng, **kwargs)


# -- classification losses ----------------------------------------------------------------------------


@given(
    n=st.integers(1, 6),
    c=st.integers(1, 6),
    seed=seeds,
    reduction=st.sampled_from(REDUCTIONS),
    smoothing=st.sampled_from([0.0, 0.1, 0.35, 1.0]),
)
def test_cross_entropy_with_labels_matches_torch(n, c, seed, reduction, smoothing):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 3
    labels = rng.integers(0, c, n)
    compare(
        L.cross_entropy, TF.cross_entropy, [logits, labels], [True, False], reduction, rng, label_smoothing=smoothing
    )


@given(
    n=st.integers(1, 6),
    c=st.integers(1, 6),
    seed=seeds,
    reduction=st.sampled_from(REDUCTIONS),
    smoothing=st.sampled_from([0.0, 0.2]),
    one_hot=st.booleans(),
)
def test_cross_entropy_with_probabilities_matches_torch(n, c, seed, reduction, smoothing, one_hot):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((n, c)) * 3
    if one_hot:
        target = np.eye(c)[rng.integers(0, c, n)]
    else:
        e = np.exp(rng.standard_normal((n, c)))
        target = e / e.sum(axis=1, keepdims=True)
    # soft targets may require a gradient too (distillation); one-hot rows never do
    compare(
        L.cross_entropy,
        TF.cross_entropy,
        [logits, target],
        [True, not one_hot],
        reduction,
        rng,
        label_smoothing=smoothing,
    )


def test_one_hot_and_label_targets_agree():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((7, 4)).astype(np.float32), rng.integers(0, 4, 7)
    for smoothing in (0.0, 0.3):
        a = L.cross_entropy(logits, labels, label_smoothing=smoothing, reduction="none")
        b = L.cross_entropy(logits, np.eye(4, dtype=np.float32)[labels], label_smoothing=smoothing, reduction="none")
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6, atol=1e-6)
    # integer one-hot rows are class probabilities too (the class axis is what tells them apart)
    np.testing.assert_allclose(
        L.cross_entropy(logits, np.eye(4, dtype=np.int64)[labels]).item(), L.cross_entropy(logits, labels).item()
    )


@given(seed=seeds, reduction=st.sampled_from(REDUCTIONS), smoothing=st.sampled_from([0.0, 0.1]))
def test_cross_entropy_class_axis_last_for_sequences(seed, reduction, smoothing):
    """Logits (N, T, C) with labels (N, T): torch takes the class axis second, we take it last."""
    rng = np.random.default_rng(seed)
    logits, labels = rng.standard_normal((3, 4, 5)), rng.integers(0, 5, (3, 4))

    def theirs(z, y, reduction, label_smoothing):
        return TF.cross_entropy(z.permute(0, 2, 1), y, reduction=reduction, label_smoothing=label_smoothing)

    compare(L.cross_entropy, theirs, [logits, labels], [True, False], reduction, rng, label_smoothing=smoothing)


@given(n=st.integers(1, 6), c=st.integers(1, 6), seed=seeds, reduction=st.sampled_from(REDUCTIONS))
def test_nll_loss_matches_torch(n, c, seed, reduction):
    rng = np.random.default_rng(seed)
    log_probs = rng.standard_normal((n, c))
    labels = rng.integers(0, c, n)
    labels[0] = c - 1  # the last class is reachable
    compare(L.nll_loss, TF.nll_loss, [log_probs, labels], [True, False], reduction, rng)


@given(shape=shapes, seed=seeds, reduction=st.sampled_from(REDUCTIONS))
def test_binary_cross_entropy_matches_torch(shape, seed, reduction):
    rng = np.random.default_rng(seed)
    probs = rng.uniform(0.01, 0.99, shape)
    target = rng.uniform(0, 1, shape)
    target.flat[0] = 1.0
    compare(L.binary_cross_entropy, TF.binary_cross_entropy, [probs, target], [True, True], reduction, rng)


def test_binary_cross_entropy_saturated_probabilities_stay_finite_like_torch():
    rng = np.random.default_rng(1)
    probs = np.array([0.0, 1.0, 0.0, 1.0, 1e-60, 1 - 1e-16])
    target = np.array([0.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    out = compare(L.binary_cross_entropy, TF.binary_cross_entropy, [probs, target], [True, False], "none", rng)
    assert np.isfinite(out.numpy()).all() and out.numpy()[2] == 100.0  # log(0) clamped at -100


@given(shape=shapes, seed=seeds, reduction=st.sampled_from(REDUCTIONS), pos=st.booleans())
def test_binary_cross_entropy_with_logits_matches_torch(shape, seed, reduction, pos):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal(shape) * 5
    logits.flat[0] = 80.0 if seed % 2 else -80.0  # far out: the naive log(sigmoid) form gives inf here
    target = rng.uniform(0, 1, shape)
    kwargs = {"pos_weight": torch.tensor(rng.uniform(0.5, 3.0, shape[-1:]))} if pos else {}
    compare(
        L.binary_cross_entropy_with_logits,
        TF.binary_cross_entropy_with_logits,
        [logits, target],
        [True, True],
        reduction,
        rng,
        **kwargs,
    )


def test_binary_cross_entropy_with_logits_is_stable_in_float32():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32)
    y = np.array([0.0, 1.0, 0.5, 0.0, 1.0], np.float32)
    t = Tensor(x, requires_grad=True)
    loss = L.binary_cross_entropy_with_logits(t, y, reduction="none")
    ref = TF.binary_cross_entropy_with_logits(torch.tensor(x), torch.tensor(y), reduction="none")
    np.testing.assert_allclose(loss.numpy(), ref.numpy(), rtol=1.3e-6, atol=1e-5)
    loss.sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), [0.0, -1.0, 0.0, 1.0, 0.0], atol=1e-6)


@pytest.mark.filterwarnings("ignore:reduction.*'mean' divides the total loss:UserWarning")  # torch's, on purpose
@given(
    n=st.integers(1, 5),
    c=st.integers(1, 5),
    seed=seeds,
    reduction=st.sampled_from([*REDUCTIONS, "batchmean"]),
    log_target=st.booleans(),
)
def test_kl_div_matches_torch(n, c, seed, reduction, log_target):
    rng = np.random.default_rng(seed)
    inp = np.log(rng.dirichlet(np.ones(c), n))
    target = rng.dirichlet(np.ones(c), n)
    zero = c > 1 and not log_target and seed % 2 == 0
    if zero:
        target[0, 0] = 0.0  # 0 log 0 = 0 (d/d target is -inf there, so no target gradient is compared)
    if log_target:
        target = np.log(target + 0.05)
    compare(L.kl_div, TF.kl_div, [inp, target], [True, not zero], reduction, rng, log_target=log_target)


# -- precision -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_low_precision_inputs_compute_in_float32(dtype):
    rng = np.random.default_rng(2)
    logits = Tensor(rng.standard_normal((8, 5)) * 4, dtype=dtype, requires_grad=True)
    labels = rng.integers(0, 5, 8)
    loss = L.cross_entropy(logits, labels, label_smoothing=0.1)
    assert loss.dtype == np.float32
    ref_in = torch.tensor(logits.numpy().astype(np.float32), requires_grad=True)
    ref = TF.cross_entropy(ref_in, torch.tensor(labels), label_smoothing=0.1)
    np.testing.assert_allclose(loss.item(), ref.item(), rtol=1e-5)
    loss.backward()
    ref.backward()
    assert logits.grad.dtype == logits.dtype  # the gradient comes back in the parameter's precision
    tol = {"float32": 1e-6, "float16": 1e-3, "bfloat16": 1e-2}[dtype]
    np.testing.assert_allclose(logits.grad.numpy().astype(np.float32), ref_in.grad.numpy(), atol=tol)


def test_float16_mse_does_not_overflow():
    # squares of 300 overflow float16 (max 65504); computed in float32 the loss is exact
    pred = Tensor(np.full(4, 300.0, np.float16), requires_grad=True)
    loss = L.mse_loss(pred, np.zeros(4, np.float16))
    assert loss.dtype == np.float32 and loss.item() == 90000.0
    loss.backward()
    assert pred.grad.dtype == np.float16 and np.all(pred.grad.numpy() == 150.0)


@pytest.mark.skipif("c" not in available_backends(), reason="the C kernels are not built")
def test_cross_entropy_on_the_c_backend_matches_the_reference():
    rng = np.random.default_rng(3)
    logits, labels = rng.standard_normal((16, 10)).astype(np.float32), rng.integers(0, 10, 16)
    results = []
    for backend in ("numpy", "c"):
        with use_backend(backend):
            t = Tensor(logits, requires_grad=True)
            loss = L.cross_entropy(t, labels, label_smoothing=0.1)
            loss.backward()
            results.append((loss.item(), t.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-5, atol=1e-7)


def test_loss_backpropagates_into_a_model_like_torch():
    rng = np.random.default_rng(4)
    model = Sequential(Dense(3, 5, relu), Dense(5, 4))
    x, y = rng.standard_normal((6, 3)).astype(np.float32), rng.integers(0, 4, 6)
    L.cross_entropy(model(Tensor(x)), y).backward()
    w1, b1, w2, b2 = (torch.tensor(p.numpy(), requires_grad=True) for p in model.parameters())
    out = torch.relu(torch.tensor(x) @ w1 + b1) @ w2 + b2
    TF.cross_entropy(out, torch.tensor(y)).backward()
    for p, t in zip(model.parameters(), (w1, b1, w2, b2)):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-5, atol=1e-6)


# -- class forms and names -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cls, fn, kwargs, target",
    [
        (L.MSELoss, L.mse_loss, {"reduction": "sum"}, "float"),
        (L.L1Loss, L.l1_loss, {}, "float"),
        (L.HuberLoss, L.huber_loss, {"delta": 0.5, "reduction": "none"}, "float"),
        (L.CrossEntropyLoss, L.cross_entropy, {"label_smoothing": 0.2}, "labels"),
        (L.NLLLoss, L.nll_loss, {"reduction": "sum"}, "labels"),
        (L.BCELoss, L.binary_cross_entropy, {}, "unit"),
        (L.BCEWithLogitsLoss, L.binary_cross_entropy_with_logits, {"pos_weight": np.full(3, 2.0)}, "unit"),
        (L.KLDivLoss, L.kl_div, {"reduction": "batchmean", "log_target": True}, "float"),
    ],
)
def test_class_forms_call_their_functions(cls, fn, kwargs, target):
    rng = np.random.default_rng(5)
    pred = rng.uniform(0.05, 0.95, (4, 3))
    tgt = {"float": rng.standard_normal((4, 3)), "labels": rng.integers(0, 3, 4), "unit": rng.uniform(0, 1, (4, 3))}
    loss = cls(**kwargs)
    np.testing.assert_array_equal(loss(pred, tgt[target]).numpy(), fn(pred, tgt[target], **kwargs).numpy())
    assert repr(loss).startswith(cls.__name__ + "(")


def test_get_loss_maps_names_and_passes_callables_through():
    expected = {
        "cross_entropy": L.cross_entropy,
        "mse": L.mse_loss,
        "l1": L.l1_loss,
        "huber": L.huber_loss,
        "nll": L.nll_loss,
        "bce": L.binary_cross_entropy,
        "bce_with_logits": L.binary_cross_entropy_with_logits,
        "kl_div": L.kl_div,
        "Cross-Entropy": L.cross_entropy,
    }
    for name, fn in expected.items():
        assert L.get_loss(name) is fn
    custom = L.HuberLoss(delta=2.0)
    assert L.get_loss(custom) is custom
    assert isinstance(L.get_loss(L.NLLLoss), L.NLLLoss)  # a loss class is instantiated with its defaults
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'.*expected one of.*cross_entropy"):
        L.get_loss("hinge")
    with pytest.raises(TypeError, match="expected a loss name or a callable"):
        L.get_loss(3)


# -- bad input -------------------------------------------------------------------------------------------


LOGITS = np.zeros((3, 4), np.float32)


@pytest.mark.parametrize("fn", [L.cross_entropy, L.nll_loss])
def test_labels_out_of_range_name_the_label_and_the_class_count(fn):
    with pytest.raises(ValueError, match=r"label 4 at position 1 is out of range for 4 classes.*0 <= label < 4"):
        fn(LOGITS, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"label -1 at position 2 is out of range"):
        fn(LOGITS, np.array([0, 1, -1]))


@pytest.mark.parametrize("fn", [L.cross_entropy, L.nll_loss])
def test_non_integer_labels_are_refused(fn):
    with pytest.raises(ValueError, match=r"class-index targets must be integers, got dtype float64.*astype\(int\)"):
        fn(LOGITS, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="got dtype bool"):
        fn(LOGITS, np.array([True, False, True]))


def test_length_and_width_mismatches_are_refused():
    with pytest.raises(
        ValueError, match=r"predictions have 3 rows.*target has shape \(2,\); expected one label per row"
    ):
        L.cross_entropy(LOGITS, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"target has width 5 but there are 4 classes; expected shape \(3, 4\)"):
        L.cross_entropy(LOGITS, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match=r"width 1 but there are 4 classes.*for integer labels pass shape \(3,\)"):
        L.cross_entropy(LOGITS, np.zeros((3, 1), np.int64))
    with pytest.raises(ValueError, match=r"predictions have shape \(3, 4\) but the class-probability target"):
        L.cross_entropy(LOGITS, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=r"predictions have shape \(3, 1\) but target has shape \(3,\).*broadcast"):
        L.mse_loss(np.zeros((3, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="must have a class axis"):
        L.cross_entropy(np.float32(1.0), np.array(0))


def test_bad_options_and_values_are_refused():
    with pytest.raises(ValueError, match=r"reduction='avg' is not one of 'mean', 'sum', 'none'"):
        L.mse_loss(np.zeros(2), np.zeros(2), reduction="avg")
    with pytest.raises(ValueError, match="reduction='batchmean' is not one of"):
        L.CrossEntropyLoss(reduction="batchmean")
    assert L.KLDivLoss(reduction="batchmean").reduction == "batchmean"
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        L.cross_entropy(LOGITS, np.array([0, 1, 2]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="delta must be > 0"):
        L.HuberLoss(delta=0.0)
    with pytest.raises(ValueError, match=r"probabilities must lie in \[0, 1\]; found 1.5 at position \(1,\)"):
        L.binary_cross_entropy(np.array([0.5, 1.5]), np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]; found 3.0"):
        L.binary_cross_entropy_with_logits(np.zeros(2), np.array([1.0, 3.0]))
    with pytest.raises(ValueError, match="target probabilities must be >= 0.*log_target=True"):
        L.kl_div(np.zeros((1, 2)), np.array([[-0.5, 1.5]]))
    with pytest.raises(TypeError, match="must be a floating"):
        L.mse_loss(np.array([True]), np.array([1.0]))
