"""axiom.train.fit: training, validation, reproducibility, bad input, NaN losses, evaluate/predict, the protocols."""

from __future__ import annotations

import io
import sys
import warnings

import numpy as np
import pytest

from axiom import BatchNorm, Dense, Dropout, Sequential, Tensor
from axiom.autograd import is_grad_enabled
from axiom.nn.init import manual_seed
from axiom.train import (
    SGD,
    Adam,
    DataLoader,
    LambdaCallback,
    NonFiniteLossError,
    cross_entropy,
    evaluate,
    fit,
    make_blobs,
    predict,
)
from axiom.train.metrics import accuracy


def blobs(n: int = 240, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(n, centers=3, cluster_std=1.0, seed=seed)


def mlp(seed: int = 0, dropout: float = 0.0, bn: bool = False) -> Sequential:
    manual_seed(seed)
    layers = [Dense(2, 16, "relu")]
    if bn:
        layers.append(BatchNorm(16))
    if dropout:
        layers.append(Dropout(dropout))
    layers.append(Dense(16, 3))
    return Sequential(*layers)


def weights(model: Sequential) -> dict[str, np.ndarray]:
    return model.state_dict()


def same_weights(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


# -- it trains ------------------------------------------------------------------------------------


def test_fit_learns_blobs_and_reports_history() -> None:
    x, y = blobs()
    model = mlp()
    before = evaluate(model, x, y)["accuracy"]
    h = fit(model, x, y, optimizer=Adam(model.parameters(), lr=0.01), epochs=8, validation_split=0.25, verbose=False)
    assert before < 0.8 and h.history["val_accuracy"][-1] > 0.95
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.epoch == list(range(1, 9)) and len(h.epochs) == 8
    assert set(h.last) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"}
    assert h.history["lr"] == [0.01] * 8 and all(t > 0 for t in h.history["time"])
    assert model.training is False


def test_default_optimizer_is_adam_lr_1e3() -> None:
    x, y = blobs(64)
    seen = []
    cb = LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(logs["lr"]))
    fit(mlp(), x, y, epochs=1, callbacks=[cb], verbose=False)
    assert type(cb.optimizer).__name__ == "Adam" and seen == [1e-3]


def test_validation_split_holds_out_the_last_samples() -> None:
    x, y = blobs(100)
    model = mlp()
    h = fit(model, x, y, epochs=2, validation_split=0.2, verbose=False, seed=0)
    # the last epoch's validation values are those of the final weights on the last 20 samples
    final = evaluate(model, x[80:], y[80:])
    assert h.last["val_loss"] == pytest.approx(final["loss"], rel=1e-6)
    assert h.last["val_accuracy"] == pytest.approx(final["accuracy"])


def test_training_metrics_average_the_batches() -> None:
    x, y = blobs(50)
    batches = []
    cb = LambdaCallback(on_batch_end=lambda b, logs: batches.append((logs["loss"], logs["size"])))
    h = fit(mlp(), x, y, epochs=1, batch_size=16, callbacks=[cb], verbose=False)
    assert [n for _, n in batches] == [16, 16, 16, 2]
    assert h.last["loss"] == pytest.approx(sum(v * n for v, n in batches) / 50)


def test_dataloader_and_validation_data_inputs() -> None:
    x, y = blobs(90)
    loader = DataLoader(x[:60], y[:60], batch_size=20, shuffle=True, seed=0)
    steps = []
    cb = LambdaCallback(on_batch_end=lambda b, logs: steps.append(b))
    h = fit(mlp(), loader, epochs=2, validation_data=(x[60:], y[60:]), callbacks=[cb], verbose=False)
    assert steps == [0, 1, 2, 0, 1, 2] and "val_accuracy" in h.last
    h = fit(mlp(), x[:60], y[:60], epochs=1, validation_data=DataLoader(x[60:], y[60:]), verbose=False)
    assert "val_loss" in h.last


def test_float64_inputs_are_cast_to_the_model_dtype() -> None:
    x, y = blobs(40)
    h = fit(mlp(), x.astype(np.float64), y, epochs=1, verbose=False)
    assert np.isfinite(h.last["loss"])


def test_callable_loss_and_metrics() -> None:
    x = np.linspace(-1, 1, 40, dtype=np.float32).reshape(-1, 1)

    def max_error(out: np.ndarray, target: np.ndarray) -> float:
        return float(np.abs(out - target).max())

    model = Dense(1, 1)
    h = fit(
        model,
        x,
        2 * x,
        loss=lambda out, t: ((out - t) ** 2).mean(),
        optimizer=SGD(model.parameters(), lr=0.5),
        metrics=["mae", max_error],
        epochs=40,
        verbose=False,
    )
    assert {"mae", "max_error"} <= set(h.last) and h.last["mae"] < 0.01
    h = fit(Dense(1, 1), x, 2 * x, loss="mse", epochs=1, verbose=False)
    assert "accuracy" not in h.last  # the default metric is left out for a regression loss
    h = fit(Dense(1, 1), x, 2 * x, loss="mse", metrics=["accuracy"], epochs=1, verbose=False)
    assert "accuracy" in h.last  # unless asked for


def test_scheduler_and_step_interval() -> None:
    from axiom.train import StepLR

    x, y = blobs(64)
    model = mlp()
    opt = SGD(model.parameters(), lr=0.1)
    h = fit(model, x, y, optimizer=opt, scheduler=StepLR(opt, step_size=2, gamma=0.5), epochs=5, verbose=False)
    assert h.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    model = mlp()
    opt = SGD(model.parameters(), lr=0.1)
    lrs = []
    cb = LambdaCallback(on_batch_end=lambda b, logs: lrs.append(logs["lr"]))
    sched = StepLR(opt, step_size=1, gamma=0.5)
    fit(
        model,
        x,
        y,
        optimizer=opt,
        scheduler=sched,
        scheduler_interval="step",
        batch_size=32,
        epochs=2,
        callbacks=[cb],
        verbose=False,
    )
    assert lrs == pytest.approx([0.1, 0.05, 0.025, 0.0125])


def test_clip_grad_norm_bounds_each_update() -> None:
    x, y = blobs(64)
    model = mlp()
    snaps = [np.concatenate([p.data.ravel() for p in model.parameters()])]
    cb = LambdaCallback(
        on_batch_end=lambda b, logs: snaps.append(np.concatenate([p.data.ravel() for p in model.parameters()]))
    )
    fit(model, x, y, optimizer=SGD(model.parameters(), lr=1.0), clip_grad_norm=1e-3, epochs=1, callbacks=[cb])
    steps = [np.linalg.norm(b.astype(np.float64) - a) for a, b in zip(snaps, snaps[1:])]
    assert len(steps) == 2 and max(steps) <= 1e-3 * 1.001 and min(steps) > 5e-4


# -- reproducibility ------------------------------------------------------------------------------


def _train(seed: int | None, *, init_seed: int = 0) -> dict[str, np.ndarray]:
    x, y = blobs(120)
    model = mlp(init_seed, dropout=0.3)
    fit(model, x, y, optimizer=Adam(model.parameters(), lr=0.01), epochs=3, batch_size=16, seed=seed, verbose=False)
    return weights(model)


def test_same_seed_gives_bit_identical_weights() -> None:
    a, b = _train(7), _train(7)
    assert same_weights(a, b)
    assert not same_weights(a, _train(8))  # the seed drives shuffling and Dropout masks


def test_seed_controls_dropout_masks_not_only_the_shuffle() -> None:
    x, y = blobs(32)

    def run(seed: int) -> dict[str, np.ndarray]:
        model = mlp(0, dropout=0.5)
        fit(model, x, y, optimizer=SGD(model.parameters(), lr=0.1), epochs=1, batch_size=32, shuffle=False, seed=seed)
        return weights(model)

    assert same_weights(run(1), run(1)) and not same_weights(run(1), run(2))


def test_without_a_seed_manual_seed_makes_it_reproducible() -> None:
    manual_seed(3)
    a = _train(None, init_seed=0)
    manual_seed(3)
    b = _train(None, init_seed=0)
    assert same_weights(a, b)


# -- bad input stops before any weight changes ----------------------------------------------------


BAD_INPUTS = [
    ({"y": "labels_out_of_range"}, r"label 3 \(sample 5\) is out of range for the model's 3 outputs"),
    ({"y": "negative"}, r"label -1 \(sample 0\) is out of range"),
    ({"y": "fractional"}, "class labels must be integers"),
    ({"y": "wide_one_hot"}, r"targets of shape \(60, 4\) do not match the model's 3 outputs"),
    ({"y": "short"}, "x and y must have the same number of samples, got 60 and 59"),
    ({"x": "empty", "y": "empty"}, r"the data is empty \(0 samples\)"),
    ({"x": "nan"}, r"x contains NaN or Inf \(first at index \(4, 1\)\)"),
    ({"validation_split": 1.0}, r"validation_split must be in \[0, 1\), got 1.0"),
    ({"validation_split": -0.1}, r"validation_split must be in \[0, 1\)"),
    ({"validation_split": 0.99}, "leaves 60 for validation and 0 for training"),
    ({"epochs": 0}, "epochs must be a positive int"),
    ({"batch_size": -1}, "batch_size must be a positive int"),
    ({"verbose": "loud"}, "verbose must be"),
    ({"metrics": ["f1"]}, "unknown metric 'f1'"),
    ({"loss": "hinge"}, "unknown loss 'hinge'"),
    ({"y": None}, "y \\(the targets\\) is missing"),
    ({"validation_data": ("val_out_of_range",)}, "validation_data: label 7"),
]


def _bad(kind: str, key: str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    y2 = y.copy()
    if kind == "labels_out_of_range":
        y2[5] = 3
    elif kind == "negative":
        y2[0] = -1
    elif kind == "fractional":
        return y.astype(np.float32) + 0.5
    elif kind == "wide_one_hot":
        return np.eye(4, dtype=np.float32)[y]
    elif kind == "short":
        return y[:-1]
    elif kind == "empty":
        return (x if key == "x" else y)[:0]
    elif kind == "nan":
        x2 = x.copy()
        x2[4, 1] = np.nan
        return x2
    return y2


@pytest.mark.parametrize(("override", "match"), BAD_INPUTS)
def test_bad_input_raises_before_touching_weights(override: dict, match: str) -> None:
    x, y = blobs(60)
    model = mlp(bn=True)
    before = weights(model)
    kwargs = {"x": x, "y": y, "epochs": 2, "verbose": False}
    for key, value in override.items():
        if key == "validation_data":
            y_val = y[:10].copy()
            y_val[2] = 7
            kwargs[key] = (x[:10], y_val)
        elif isinstance(value, str) and key in ("x", "y"):
            kwargs[key] = _bad(value, key, x, y)
        else:
            kwargs[key] = value
    calls = []
    kwargs["callbacks"] = [LambdaCallback(on_train_begin=lambda logs: calls.append("begin"))]
    with pytest.raises((ValueError, TypeError), match=match):
        fit(model, **kwargs)
    assert same_weights(before, weights(model)) and calls == [] and model.training is False


def test_one_hot_targets_of_the_right_width_train() -> None:
    x, y = blobs(60)
    h = fit(mlp(), x, np.eye(3, dtype=np.float32)[y], epochs=2, verbose=False)
    assert np.isfinite(h.last["loss"]) and 0 <= h.last["accuracy"] <= 1


# -- a NaN loss names the step and leaves the weights as they were --------------------------------


def test_nan_loss_names_epoch_and_batch_and_keeps_the_last_good_weights() -> None:
    x, y = blobs(64)
    model = mlp(bn=True)
    opt = Adam(model.parameters(), lr=0.01)
    calls = {"n": 0}
    snapshots: list[dict[str, np.ndarray]] = []

    def flaky_loss(out: Tensor, target: np.ndarray) -> Tensor:
        calls["n"] += 1
        loss = cross_entropy(out, target)
        return loss * float("nan") if calls["n"] == 7 else loss  # epoch 2, batch 2 with 4 batches per epoch

    cb = LambdaCallback(on_batch_end=lambda b, logs: snapshots.append(weights(model)))
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at epoch 2, batch 2 \(global step 6\)") as info:
        fit(model, x, y, loss=flaky_loss, optimizer=opt, epochs=3, batch_size=16, callbacks=[cb], verbose=False)
    assert (info.value.epoch, info.value.batch, info.value.step) == (2, 2, 6)
    assert len(snapshots) == 6 and same_weights(snapshots[-1], weights(model))  # BatchNorm buffers included
    assert model.training is False
    assert all(p.grad is None for p in model.parameters())


def test_diverging_training_stops_with_inf_or_nan() -> None:
    x, y = blobs(64)
    x = x * 1e18
    model = mlp()
    with pytest.raises(NonFiniteLossError, match="at epoch 1, batch"), np.errstate(all="ignore"):
        fit(model, x, y, optimizer=SGD(model.parameters(), lr=1e30), epochs=3, verbose=False)


# -- evaluate / predict ---------------------------------------------------------------------------


def test_evaluate_matches_a_direct_computation_and_records_nothing() -> None:
    x, y = blobs(70)
    model = mlp(dropout=0.5)
    model.train()
    r = evaluate(model, x, y, batch_size=16)
    model.eval()
    out = model(x)
    assert r["loss"] == pytest.approx(float(cross_entropy(out, y).item()), rel=1e-5)
    assert r["accuracy"] == pytest.approx(accuracy(out.numpy(), y))
    assert model.eval().training is False
    assert all(p.grad is None for p in model.parameters())


def test_evaluate_restores_train_mode_and_runs_without_grad() -> None:
    x, y = blobs(20)
    model = mlp()
    model.train()
    seen = []

    def loss(out: Tensor, target: np.ndarray) -> Tensor:
        seen.append((is_grad_enabled(), model.training, out.requires_grad))
        return cross_entropy(out, target)

    evaluate(model, x, y, loss=loss)
    assert seen == [(False, False, False)] and model.training is True


def test_predict_concatenates_batches() -> None:
    x, _ = blobs(37)
    model = mlp()
    np.testing.assert_allclose(predict(model, x, batch_size=8), model(x).numpy(), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="x is empty"):
        predict(model, x[:0])


# -- progress output ------------------------------------------------------------------------------


def test_verbose_lines_and_silence(capsys: pytest.CaptureFixture[str]) -> None:
    x, y = blobs(40)
    fit(mlp(), x, y, epochs=3, verbose="auto")  # captured stdout is not a terminal: plain lines
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3 - loss ") and "accuracy" in lines[0]
    fit(mlp(), x, y, epochs=2, verbose=False)
    assert capsys.readouterr().out == ""


def test_verbose_bar_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    out = Terminal()
    monkeypatch.setattr(sys, "stdout", out)
    x, y = blobs(40)
    fit(mlp(), x, y, epochs=2, batch_size=10, verbose="auto")
    text = out.getvalue()
    assert "epoch 1/2" in text and "4/4" in text and "epoch 2/2" in text and "\r" in text


# -- the certified / mixed-precision protocol -----------------------------------------------------


class RecordingMixedPrecision:
    """Follows MixedPrecision's protocol in float32 and records the calls."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def attach(self, model: Sequential, optimizer: object) -> None:
        self.calls.append("attach")

    def cast_input(self, x: np.ndarray) -> np.ndarray:
        self.calls.append("cast")
        return x

    def step(self, loss: Tensor, optimizer: SGD, clip: float | None) -> bool:
        self.calls.append(f"step clip={clip}")
        if len(self.calls) % 3 == 0:
            return False  # as if the gradients overflowed: no update
        loss.backward()
        optimizer.step()
        return True

    def finish(self, model: Sequential) -> None:
        self.calls.append(f"finish training={model.training}")


class RecordingCertified:
    def __init__(self) -> None:
        self.progress: list[float] = []

    def loss(self, model, xb, yb, loss_fn, natural_loss, outputs, progress):  # type: ignore[no-untyped-def]
        assert outputs.shape == (len(xb), 3) and natural_loss.shape == ()
        self.progress.append(progress)
        return natural_loss * 2.0

    def metrics(self, model, xb, yb) -> dict[str, float]:  # type: ignore[no-untyped-def]
        assert not model.training
        return {"verified_acc": 0.25}


def test_mixed_precision_protocol_order() -> None:
    x, y = blobs(40)
    mp = RecordingMixedPrecision()
    model = mlp()
    h = fit(
        model,
        x,
        y,
        optimizer=SGD(model.parameters(), lr=0.1),
        epochs=2,
        batch_size=20,
        validation_data=(x[:10], y[:10]),
        mixed_precision=mp,
        clip_grad_norm=5.0,
        verbose=False,
    )
    train_step = ["cast", "step clip=5.0"]
    epoch = train_step * 2 + ["cast"]  # two training batches, one validation batch (cast too)
    assert mp.calls == ["attach", *epoch, *epoch, "finish training=False"]
    # only the first step call is the 3rd call overall (of steps at 3, 5, 8, 10): it "overflowed"
    assert h.history["skipped_steps"] == [1, 0]


def test_certified_protocol_progress_and_metrics() -> None:
    x, y = blobs(40)
    cert = RecordingCertified()
    h = fit(mlp(), x, y, epochs=2, batch_size=10, certified=cert, validation_data=(x[:8], y[:8]), verbose=False)
    assert cert.progress == [i / 8 for i in range(8)]
    assert h.last["val_verified_acc"] == 0.25
    h = fit(mlp(), x, y, epochs=1, batch_size=10, certified=RecordingCertified(), verbose=False)
    assert h.last["verified_acc"] == 0.25  # no validation data: measured on the training data
    natural = fit(mlp(), x, y, epochs=1, batch_size=40, shuffle=False, seed=0, verbose=False).last["loss"]
    doubled = fit(mlp(), x, y, epochs=1, batch_size=40, shuffle=False, seed=0, certified=RecordingCertified())
    assert doubled.last["loss"] == pytest.approx(2 * natural, rel=1e-6)  # the certified loss is what is logged


def test_mixed_precision_is_finished_after_an_error() -> None:
    x, y = blobs(40)
    mp = RecordingMixedPrecision()

    def nan_loss(out: Tensor, target: np.ndarray) -> Tensor:
        return cross_entropy(out, target) * float("nan")

    with pytest.raises(NonFiniteLossError):
        fit(mlp(), x, y, loss=nan_loss, mixed_precision=mp, verbose=False)
    assert mp.calls == ["attach", "cast", "finish training=False"]


def test_real_mixed_precision_and_certified_training_run() -> None:
    from axiom.train import IBPTraining, MixedPrecision

    x, y = blobs(64)
    model = mlp()
    h = fit(model, x, y, epochs=2, mixed_precision=MixedPrecision("bfloat16"), verbose=False, seed=0)
    assert model.parameters()[0].dtype == np.float32 and np.isfinite(h.last["loss"])
    h = fit(mlp(), x, y, epochs=2, certified=IBPTraining(eps=0.1, input_range=(-20.0, 20.0)), verbose=False)
    assert np.isfinite(h.last["loss"]) and any("verified" in k for k in h.last)


def test_lazy_layers_are_built_before_the_default_optimizer_is_made() -> None:
    x, y = blobs(90)
    manual_seed(0)
    model = Sequential(Dense(16, "relu"), Dense(3))  # input size inferred from the data
    assert not model.layers[0].built
    h = fit(model, x, y, optimizer=None, epochs=3, verbose=False, seed=0)
    assert model.layers[0].weight.shape == (2, 16) and h.history["loss"][-1] < h.history["loss"][0]


def test_input_of_the_wrong_shape_is_a_shape_error_before_training() -> None:
    from axiom import ShapeError

    x, y = blobs(30)
    model = mlp()
    before = weights(model)
    with pytest.raises(ShapeError, match="Dense"):
        fit(model, np.concatenate([x, x], axis=1), y, epochs=1, verbose=False)
    assert same_weights(before, weights(model))


def test_softmax_output_with_cross_entropy_warns_once_at_fit_start() -> None:
    from axiom import Softmax

    x, y = make_blobs(60, centers=3, seed=0)
    model = Sequential(Dense(2, 4, "relu"), Dense(4, 3), Softmax())
    with pytest.warns(UserWarning, match="ends with Softmax"):
        fit(model, x, y, epochs=1, verbose=False)
    logits_model = Sequential(Dense(2, 4, "relu"), Dense(4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(logits_model, x, y, epochs=1, verbose=False)
