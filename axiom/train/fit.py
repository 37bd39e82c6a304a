"""The training loop: :func:`fit`, :func:`evaluate` and :func:`predict`.

``fit`` batches the data, runs forward, loss, backward and the optimizer step for each
batch, evaluates on validation data after each epoch and returns a
:class:`~axiom.train.callbacks.History`. It checks its input before any weight changes (length
mismatch, empty data, labels out of range for the model's outputs, NaN/Inf inputs, bad
arguments), stops with :class:`NonFiniteLossError` naming the epoch and batch when a loss is
NaN or infinite (the weights stay as they were before that step), and is reproducible: with
the same ``seed`` two runs give bit-identical weights (the seed drives the shuffling and
:func:`axiom.nn.init.manual_seed`, hence Dropout masks).

Per step: ``optimizer.zero_grad()``; (mixed precision: ``xb = mixed_precision.cast_input(xb)``);
``out = model(xb)``; ``loss = loss_fn(out, yb)``; (certified: ``loss = certified.loss(model, xb,
yb, loss_fn, natural_loss=loss, outputs=out, progress=step / total_steps)``); the finite check;
then ``mixed_precision.step(loss, optimizer, clip_grad_norm)`` or ``loss.backward()``, optional
``clip_grad_norm_`` and ``optimizer.step()``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense, Sequential
    >>> from axiom.nn.init import manual_seed
    >>> from axiom.train import make_blobs
    >>> x, y = make_blobs(200, centers=3, seed=0)
    >>> manual_seed(0)
    >>> model = Sequential(Dense(2, 16, "relu"), Dense(16, 3))
    >>> history = fit(model, x, y, epochs=10, validation_split=0.2, seed=0, verbose=False)
    >>> sorted(history.history)
    ['accuracy', 'loss', 'lr', 'time', 'val_accuracy', 'val_loss']
    >>> evaluate(model, x, y)["accuracy"] > 0.9, predict(model, x[:4]).shape
    (True, (4, 3))
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from axiom.autograd import no_grad
from axiom.nn import Layer, init
from axiom.tensor import Tensor, is_floating
from axiom.train.callbacks import Callback, History, callback_list
from axiom.train.data import DataLoader, as_array
from axiom.train.metrics import get_metric
from axiom.train.progress import Progress, progress_mode

__all__ = ["NonFiniteLossError", "evaluate", "fit", "predict"]

#: The default ``metrics`` of fit/evaluate; left out for the regression losses (MSE, L1, Huber).
DEFAULT_METRICS: tuple[str, ...] = ("accuracy",)


class NonFiniteLossError(FloatingPointError):
    """A training loss was NaN or infinite; ``epoch`` (from 1), ``batch`` (from 0 in the epoch), ``step``, ``loss``.

    The step's update was not applied: the weights, buffers and optimizer state are those
    from before the step.

    Example:
        >>> err = NonFiniteLossError(2, 5, 29, float("nan"))
        >>> err.epoch, err.batch, err.step
        (2, 5, 29)
    """

    def __init__(self, epoch: int, batch: int, step: int, loss: float) -> None:
        self.epoch, self.batch, self.step, self.loss = epoch, batch, step, loss
        super().__init__(
            f"fit: the loss is {loss} at epoch {epoch}, batch {batch} (global step {step}); the update was "
            "not applied and the weights are those from before this step. Check the data for NaN/Inf, "
            "lower the learning rate or clip gradients (clip_grad_norm=...)"
        )


# -- argument and data checks -------------------------------------------------------------


def _positive_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"fit: {what} must be a positive int, got {value!r}")
    return int(value)


def _model_dtype(model: Any) -> np.dtype | None:
    fn = getattr(model, "param_dtype", None)
    return fn() if fn is not None else None


def _prepare_x(x: Any, model: Any, what: str) -> np.ndarray:
    """``x`` as an array in the model's dtype (floating inputs are cast; integer token ids are kept)."""
    arr = as_array(x, f"{what}: x")
    dtype = _model_dtype(model)
    if is_floating(arr.dtype) or arr.dtype.kind == "f":
        if not np.isfinite(arr.astype(np.float32) if arr.dtype.kind == "V" else arr).all():
            bad = np.argwhere(~np.isfinite(np.asarray(arr, np.float64)))[0]
            raise ValueError(f"{what}: x contains NaN or Inf (first at index {tuple(int(i) for i in bad)})")
        if dtype is not None and arr.dtype != dtype:
            arr = arr.astype(dtype)
    return arr


def _pair(x: Any, y: Any, model: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    if x is None:
        raise ValueError(f"{what}: no data: pass x and y (arrays or Tensors) or a DataLoader as x")
    if y is None:
        raise ValueError(f"{what}: y (the targets) is missing; pass x and y, or a DataLoader with targets as x")
    xa, ya = _prepare_x(x, model, what), as_array(y, f"{what}: y")
    if len(xa) != len(ya):
        raise ValueError(f"{what}: x and y must have the same number of samples, got {len(xa)} and {len(ya)}")
    if len(xa) == 0:
        raise ValueError(f"{what}: the data is empty (0 samples)")
    return xa, ya


def _loader(data: Any, y: Any, model: Any, batch_size: int, what: str, **kw: Any) -> DataLoader:
    if isinstance(data, DataLoader):
        if y is not None:
            raise ValueError(f"{what}: x is a DataLoader, so y must be None (the loader holds the targets)")
        if data.y is None:
            raise ValueError(f"{what}: the DataLoader has no targets (y)")
        if data.num_samples == 0 or len(data) == 0:
            raise ValueError(f"{what}: the DataLoader yields no batch ({data!r})")
        return data
    xa, ya = _pair(data, y, model, what)
    return DataLoader(xa, ya, batch_size=batch_size, **kw)


def _is_classification(loss_fn: Callable[..., Any]) -> bool:
    from axiom.train import losses

    fns = tuple(getattr(losses, n) for n in ("cross_entropy", "nll_loss") if hasattr(losses, n))
    classes = tuple(getattr(losses, n) for n in ("CrossEntropyLoss", "NLLLoss") if hasattr(losses, n))
    return loss_fn in fns or (bool(classes) and isinstance(loss_fn, classes))


def _is_regression(loss_fn: Callable[..., Any]) -> bool:
    from axiom.train import losses

    fns = tuple(getattr(losses, n) for n in ("mse_loss", "l1_loss", "huber_loss") if hasattr(losses, n))
    classes = tuple(getattr(losses, n) for n in ("MSELoss", "L1Loss", "HuberLoss") if hasattr(losses, n))
    return loss_fn in fns or (bool(classes) and isinstance(loss_fn, classes))


def _output_width(model: Any, sample: np.ndarray, probe: bool = False) -> int | None:
    """The model's output width for inputs like ``sample``: from its shape rule, else (or with ``probe``,
    which also builds lazy layers) from one forward pass in eval mode without gradients."""
    if not probe:
        try:
            shape = model.output_shape(("batch", *sample.shape[1:]))
            if isinstance(shape[-1], int | np.integer):
                return int(shape[-1])
        except NotImplementedError:
            pass
    training = getattr(model, "training", False)
    try:
        _set_mode(model, False)
        with no_grad():
            return int(model(sample[:1]).shape[-1])
    finally:
        _set_mode(model, training)


def _last_layer(model: Layer) -> Layer:
    layers = getattr(model, "layers", None)
    return _last_layer(layers[-1]) if isinstance(layers, list | tuple) and layers else model


def _warn_if_softmax_into_logit_loss(model: Layer, loss_fn: Any) -> None:
    """Warn when a model ending in Softmax trains with a loss that applies its own (log-)softmax.

    Example:
        >>> import warnings
        >>> from axiom import Dense, Sequential, Softmax
        >>> from axiom.train.losses import cross_entropy
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     _warn_if_softmax_into_logit_loss(Sequential(Dense(2, 3), Softmax()), cross_entropy)
        >>> "expects logits" in str(caught[0].message)
        True
    """
    from axiom.nn import Softmax
    from axiom.train.losses import CrossEntropyLoss, cross_entropy

    if isinstance(_last_layer(model), Softmax) and (loss_fn is cross_entropy or isinstance(loss_fn, CrossEntropyLoss)):
        warnings.warn(
            "fit: the model ends with Softmax but the loss 'cross_entropy' expects logits (it applies log-softmax "
            "itself), so training sees softmax(softmax(z)) and learns slowly; train without the final Softmax "
            "(add it back for inference), or end with LogSoftmax and use loss='nll'",
            UserWarning,
            stacklevel=3,
        )


def _check_targets(y: np.ndarray, width: int | None, what: str) -> None:
    """Class labels must be integers in ``[0, width)``; one-hot rows must be ``width`` wide."""
    if width is None:
        return
    if y.ndim >= 2 and y.shape[-1] == width and y.dtype.kind == "f":
        return  # one-hot or class probabilities
    if y.ndim >= 2 and y.dtype.kind == "f":
        raise ValueError(
            f"{what}: targets of shape {y.shape} do not match the model's {width} outputs; expected integer "
            f"labels (N,) or one-hot rows (N, {width})"
        )
    if y.dtype.kind not in "iub":
        if y.dtype.kind != "f" or not (np.isfinite(y) & (y == np.round(y))).all():
            raise ValueError(f"{what}: class labels must be integers, got dtype {y.dtype}")
    flat = y.ravel()
    bad = np.flatnonzero((flat < 0) | (flat >= width))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{what}: label {flat[i]} (sample {i}) is out of range for the model's {width} outputs; "
            f"expected labels in [0, {width}) ({bad.size} bad label{'s' if bad.size > 1 else ''})"
        )


def _set_mode(model: Any, training: bool) -> None:
    if hasattr(model, "train"):
        model.train(training)


def _metric_fns(metrics: Any, loss_fn: Callable[..., Any]) -> list[tuple[str, Callable[[Any, Any], float]]]:
    if metrics is DEFAULT_METRICS and _is_regression(loss_fn):
        return []  # accuracy means nothing for a regression
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        metrics = [metrics]
    out = [get_metric(m) for m in metrics]
    names = [n for n, _ in out]
    if len(set(names)) != len(names) or "loss" in names:
        raise ValueError(f"fit: metric names must be unique and not 'loss', got {names}")
    return out


def _all_params(optimizer: Any) -> list[Any]:
    return [p for group in optimizer.param_groups for p in group["params"]]


class _Mean:
    """Running mean weighted by batch size, per key."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.count = 0

    def add(self, values: dict[str, float], n: int) -> None:
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v) * n
        self.count += n

    def result(self, prefix: str = "") -> dict[str, float]:
        return {prefix + k: s / self.count for k, s in self.sums.items()} if self.count else {}


def _batch_metrics(out: Tensor, yb: Any, metric_fns: Sequence[tuple[str, Callable[..., float]]]) -> dict[str, float]:
    return {name: fn(out.data, yb) for name, fn in metric_fns}


def _eval_mean(
    model: Any,
    loader: Iterable[tuple[np.ndarray, Any]],
    cast: Callable[[Any], Any] | None,
    per_batch: Callable[[Any, Any], dict[str, float]],
    prefix: str = "",
) -> dict[str, float]:
    """``per_batch(x, y)`` averaged over ``loader`` in eval mode under ``no_grad`` (mode restored)."""
    training = getattr(model, "training", False)
    _set_mode(model, False)
    mean = _Mean()
    try:
        with no_grad():
            for xb, yb in loader:
                mean.add(per_batch(cast(xb) if cast is not None else xb, yb), len(xb))
    finally:
        _set_mode(model, training)
    return mean.result(prefix)


def _run_eval(
    model: Any,
    loader: Iterable[tuple[np.ndarray, Any]],
    loss_fn: Callable[..., Any],
    metric_fns: Sequence[tuple[str, Callable[..., float]]],
    cast: Callable[[Any], Any] | None = None,
    certified: Any = None,
    prefix: str = "",
) -> dict[str, float]:
    """Loss, metrics and certified metrics over ``loader`` in eval mode under ``no_grad`` (mode restored)."""

    def per_batch(xin: Any, yb: Any) -> dict[str, float]:
        out = model(xin)
        values = {"loss": float(loss_fn(out, yb).item()), **_batch_metrics(out, yb, metric_fns)}
        if certified is not None and hasattr(certified, "metrics"):
            values.update(certified.metrics(model, xin, yb))
        return values

    return _eval_mean(model, loader, cast, per_batch, prefix)


def _certified_metrics(model: Any, loader: DataLoader, cast: Callable[[Any], Any] | None, certified: Any) -> dict:
    """``certified.metrics`` averaged over ``loader`` (eval mode; the bounds need no gradient)."""
    return _eval_mean(model, loader, cast, lambda xin, yb: certified.metrics(model, xin, yb))


# -- the loop ----------------------------------------------------------------------------


def fit(
    model: Any,
    x: Any = None,
    y: Any = None,
    *,
    loss: str | Callable[..., Tensor] = "cross_entropy",
    optimizer: Any = None,
    epochs: int = 10,
    batch_size: int = 32,
    shuffle: bool = True,
    validation_split: float = 0.0,
    validation_data: Any = None,
    metrics: Sequence[str | Callable[..., float]] | None = DEFAULT_METRICS,
    callbacks: Sequence[Callback] | Callback = (),
    scheduler: Any = None,
    scheduler_interval: str = "epoch",
    clip_grad_norm: float | None = None,
    seed: int | None = None,
    verbose: Any = "auto",
    certified: Any = None,
    mixed_precision: Any = None,
) -> History:
    """Train ``model`` on ``(x, y)`` for ``epochs`` epochs; return the :class:`~axiom.train.callbacks.History`.

    - **Data**: ``x``/``y`` are arrays or Tensors with one row per sample (floating ``x`` is
      cast to the model's dtype), or ``x`` is a :class:`~axiom.train.data.DataLoader` (then
      ``batch_size``/``shuffle`` are the loader's). ``validation_split`` (in [0, 1)) holds
      out the *last* fraction of the samples, before shuffling, as Keras does;
      ``validation_data`` is ``(x_val, y_val)`` or a DataLoader.
    - **loss**: a name for :func:`axiom.train.losses.get_loss` (``"cross_entropy"`` from logits,
      ``"mse"``, ``"bce_with_logits"``...) or a callable ``(outputs, targets) -> Tensor``.
    - **optimizer**: default ``Adam(model.parameters(), lr=1e-3)``. **scheduler**: its
      ``step()`` is called after every epoch (``scheduler_interval="step"``: every batch).
      ``clip_grad_norm``: clip the gradients' global 2-norm before each step.
    - **metrics**: names (``"accuracy"``, ``"mae"``, ``"mse"``) or callables, logged on the
      training batches and on the validation data (``val_`` prefix). The default, accuracy, is
      left out when the loss is a regression loss (MSE, L1, Huber).
    - **callbacks**: :mod:`axiom.train.callbacks` (early stopping, checkpoints, loggers).
    - **seed**: seeds :func:`axiom.nn.init.manual_seed` (Dropout masks, lazily built layers)
      and the shuffling; the same seed gives bit-identical weights. Without a seed the
      shuffling draws from the generator that ``manual_seed`` seeds.
    - **verbose**: ``"auto"`` (a tqdm bar on a terminal, one line per epoch otherwise),
      ``"bar"``, ``"lines"``, ``False``.
    - **certified** (e.g. :class:`axiom.train.certified.IBPTraining`) replaces the loss by a
      robust one and logs its ``metrics()``; **mixed_precision** (e.g.
      :class:`axiom.train.mixed_precision.MixedPrecision`) trains in float16/bfloat16 with
      float32 master weights (the logs count ``skipped_steps``, updates skipped for gradient
      overflow); the model ends in float32.

    The model is in train mode while training and in eval mode afterwards.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense
        >>> from axiom.train import SGD
        >>> from axiom.nn.init import manual_seed
        >>> x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(-1, 1)
        >>> manual_seed(0); model = Dense(1, 1)
        >>> h = fit(model, x, 3 * x + 1, loss="mse", optimizer=SGD(model.parameters(), lr=0.5),
        ...         epochs=30, metrics=["mae"], seed=0, verbose=False)
        >>> h.history["mae"][-1] < 0.01, model.training
        (True, False)
        >>> fit(model, x, np.zeros(3), loss="mse", verbose=False)
        Traceback (most recent call last):
        ...
        ValueError: fit: x and y must have the same number of samples, got 64 and 3
    """
    # ---- arguments (nothing is touched until every check has passed) ----
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    if isinstance(validation_split, bool) or not isinstance(validation_split, int | float):
        raise TypeError(f"fit: validation_split must be a number in [0, 1), got {validation_split!r}")
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"fit: validation_split must be in [0, 1), got {validation_split}")
    if validation_split and validation_data is not None:
        raise ValueError("fit: give validation_split or validation_data, not both")
    if scheduler_interval not in ("epoch", "step"):
        raise ValueError(f"fit: scheduler_interval must be 'epoch' or 'step', got {scheduler_interval!r}")
    if clip_grad_norm is not None and not (isinstance(clip_grad_norm, int | float) and clip_grad_norm > 0):
        raise ValueError(f"fit: clip_grad_norm must be a positive number or None, got {clip_grad_norm!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer)):
        raise TypeError(f"fit: seed must be an int or None, got {seed!r}")
    mode = progress_mode(verbose)
    from axiom.train.losses import get_loss

    loss_fn = get_loss(loss)
    _warn_if_softmax_into_logit_loss(model, loss_fn)
    metric_fns = _metric_fns(metrics, loss_fn)
    cbs = callback_list(callbacks)

    # ---- data ----
    if seed is not None:
        init.manual_seed(int(seed))
    shuffle_seed = int(seed) if seed is not None else int(init.generator().integers(2**63))
    if isinstance(x, DataLoader):
        if validation_split:
            raise ValueError("fit: validation_split needs arrays; with a DataLoader pass validation_data")
        train = _loader(x, y, model, batch_size, "fit")
    else:
        xa, ya = _pair(x, y, model, "fit")
        if validation_split:
            split = int(len(xa) * (1.0 - validation_split))
            if split == len(xa) or split == 0:
                raise ValueError(
                    f"fit: validation_split={validation_split} of {len(xa)} samples leaves "
                    f"{len(xa) - split} for validation and {split} for training; both need at least one"
                )
            validation_data = (xa[split:], ya[split:])
            xa, ya = xa[:split], ya[:split]
        train = DataLoader(xa, ya, batch_size=batch_size, shuffle=shuffle, seed=shuffle_seed)
    val = None
    if validation_data is not None:
        if isinstance(validation_data, DataLoader):
            val = _loader(validation_data, None, model, batch_size, "fit: validation_data")
        elif isinstance(validation_data, tuple | list) and len(validation_data) == 2:
            val = _loader(validation_data[0], validation_data[1], model, max(batch_size, 256), "fit: validation_data")
        else:
            raise TypeError("fit: validation_data must be (x_val, y_val) or a DataLoader")
    if _is_classification(loss_fn) or any(fn is get_metric("accuracy")[1] for _, fn in metric_fns):
        width = _output_width(model, train.x)
        if width is not None and (width > 1 or _is_classification(loss_fn)):
            _check_targets(train.y, width, "fit")
            if val is not None:
                _check_targets(val.y, width, "fit: validation_data")
    if hasattr(model, "modules") and not all(m.built for m in model.modules()):
        _output_width(model, train.x[:1], probe=True)  # lazy layers get their weights from one sample
    if not model.parameters():
        raise ValueError(f"fit: {type(model).__name__} has no trainable parameters")
    if optimizer is None:
        from axiom.train.optim import Adam

        optimizer = Adam(model.parameters(), lr=1e-3)

    # ---- callbacks ----
    history = History()
    progress = Progress(mode) if mode is not None else None
    all_cbs: list[Callback] = [history, *cbs, *([progress] if progress else [])]
    names = ["loss", *(n for n, _ in metric_fns)]
    log_keys = [*names, *(["val_" + n for n in names] if val is not None else []), "lr", "time"]
    steps_per_epoch = len(train)
    params = {
        "epochs": epochs,
        "steps": steps_per_epoch,
        "samples": train.num_samples,
        "batch_size": train.batch_size,
        "log_keys": log_keys,
        "metrics": names,
        "do_validation": val is not None,
    }
    for cb in all_cbs:
        cb.set_context(model, optimizer, params)
    cast = mixed_precision.cast_input if mixed_precision is not None else None
    total_steps = epochs * steps_per_epoch
    buffers = list(model.named_buffers()) if hasattr(model, "named_buffers") else []

    if mixed_precision is not None:
        mixed_precision.attach(model, optimizer)
    finished = False
    try:
        for cb in all_cbs:
            cb.on_train_begin({})
        step = 0
        for epoch in range(1, epochs + 1):
            for cb in all_cbs:
                cb.on_epoch_begin(epoch, {})
            _set_mode(model, True)
            t0 = time.perf_counter()
            running = _Mean()
            skipped = 0
            for batch, (xb, yb) in enumerate(train):
                saved = [(t, t.data.copy()) for _, t in buffers]  # BatchNorm running stats change in forward
                optimizer.zero_grad()
                xin = cast(xb) if cast is not None else xb
                out = model(xin)
                loss_t = loss_fn(out, yb)
                if certified is not None:
                    loss_t = certified.loss(
                        model, xin, yb, loss_fn, natural_loss=loss_t, outputs=out, progress=step / total_steps
                    )
                value = float(loss_t.item())
                if not math.isfinite(value):
                    for t, data in saved:
                        t.data = data
                    raise NonFiniteLossError(epoch, batch, step, value)
                if mixed_precision is not None:
                    skipped += mixed_precision.step(loss_t, optimizer, clip_grad_norm) is False  # overflow
                else:
                    loss_t.backward()
                    if clip_grad_norm is not None:
                        from axiom.train.optim import clip_grad_norm_

                        clip_grad_norm_(_all_params(optimizer), clip_grad_norm)
                    optimizer.step()
                step += 1
                batch_values = {"loss": value, **_batch_metrics(out, yb, metric_fns)}
                running.add(batch_values, len(xb))
                lr = optimizer.param_groups[0]["lr"]
                if scheduler is not None and scheduler_interval == "step":
                    scheduler.step()
                for cb in all_cbs:
                    cb.on_batch_end(batch, {**batch_values, "size": len(xb), "epoch": epoch, "step": step, "lr": lr})
            logs: dict[str, Any] = running.result()
            if mixed_precision is not None:
                logs["skipped_steps"] = skipped  # steps whose gradients overflowed (loss scale backed off)
            if val is not None:
                logs.update(_run_eval(model, val, loss_fn, metric_fns, cast, certified, prefix="val_"))
            elif certified is not None and hasattr(certified, "metrics"):
                logs.update(_certified_metrics(model, train, cast, certified))
            logs["lr"] = float(optimizer.param_groups[0]["lr"] if scheduler_interval == "epoch" else lr)
            if scheduler is not None and scheduler_interval == "epoch":
                scheduler.step()
            logs["time"] = time.perf_counter() - t0
            for cb in all_cbs:
                cb.on_epoch_end(epoch, logs)
            if any(cb.stop_training for cb in all_cbs):
                break
        finished = True
    finally:
        _set_mode(model, False)
        if mixed_precision is not None:
            mixed_precision.finish(model)
        if not finished and progress is not None:
            progress.close()
    for cb in all_cbs:
        cb.on_train_end({})
    return history


def evaluate(
    model: Any,
    x: Any,
    y: Any = None,
    *,
    loss: str | Callable[..., Tensor] = "cross_entropy",
    metrics: Sequence[str | Callable[..., float]] | None = DEFAULT_METRICS,
    batch_size: int = 256,
    certified: Any = None,
    mixed_precision: Any = None,
) -> dict[str, float]:
    """Loss and metrics of ``model`` on ``(x, y)`` (or a DataLoader ``x``): ``{"loss": ..., "accuracy": ...}``.

    Runs in eval mode under ``no_grad`` (the model's mode is restored afterwards), in batches
    of ``batch_size``; values are means over all samples. ``certified`` adds its
    ``metrics()`` (e.g. verified accuracy); ``mixed_precision`` casts the inputs with its
    ``cast_input`` (for a model that is in float16/bfloat16).

    Example:
        >>> import numpy as np
        >>> from axiom import Dense
        >>> model = Dense(2, 2)
        >>> model.load_state_dict({"weight": np.eye(2), "bias": np.zeros(2)})
        IncompatibleKeys(missing_keys=[], unexpected_keys=[])
        >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 2.0]], np.float32)
        >>> r = evaluate(model, x, np.array([0, 1, 0]))
        >>> round(r["accuracy"], 4), round(r["loss"], 4)
        (0.6667, 0.6466)
    """
    from axiom.train.losses import get_loss

    batch_size = _positive_int(batch_size, "batch_size")
    loss_fn = get_loss(loss)
    metric_fns = _metric_fns(metrics, loss_fn)
    loader = _loader(x, y, model, batch_size, "evaluate")
    if _is_classification(loss_fn):
        _check_targets(loader.y, _output_width(model, loader.x), "evaluate")
    cast = mixed_precision.cast_input if mixed_precision is not None else None
    return _run_eval(model, loader, loss_fn, metric_fns, cast, certified)


def predict(model: Any, x: Any, batch_size: int = 256) -> np.ndarray:
    """The model's outputs for ``x`` as one NumPy array, computed in batches in eval mode under ``no_grad``.

    Example:
        >>> import numpy as np
        >>> from axiom import Dense
        >>> predict(Dense(3, 2), np.ones((5, 3), np.float32), batch_size=2).shape
        (5, 2)
    """
    batch_size = _positive_int(batch_size, "batch_size")
    xa = _prepare_x(x.x if isinstance(x, DataLoader) else x, model, "predict")
    training = getattr(model, "training", False)
    _set_mode(model, False)
    try:
        with no_grad():
            outs = [np.asarray(model(xa[i : i + batch_size]).data) for i in range(0, len(xa), batch_size)]
    finally:
        _set_mode(model, training)
    if not outs:
        raise ValueError("predict: x is empty (0 samples)")
    return np.concatenate(outs)
