"""Callbacks for :func:`axiom.train.fit`: history, early stopping, checkpoints, loggers, lambdas.

:func:`~axiom.train.fit` calls, on every callback in order: ``on_train_begin(logs)``, then per
epoch ``on_epoch_begin(epoch, logs)``, ``on_batch_end(batch, logs)`` after every optimizer
step and ``on_epoch_end(epoch, logs)``, and finally ``on_train_end(logs)``. Epochs are counted
from 1, batches from 0 within an epoch. The epoch logs are a flat dict: ``loss``, each metric
(``accuracy``...), their ``val_`` versions when there is validation data, ``lr`` and ``time``
(seconds). Before training, fit gives every callback ``model``, ``optimizer`` and ``params``
(``epochs``, ``steps``, ``log_keys``...). A callback asks fit to stop after the current epoch by
setting ``self.stop_training = True``.

Example:
    >>> import numpy as np
    >>> from axiom import Dense
    >>> from axiom.train import fit
    >>> x = np.random.default_rng(0).standard_normal((32, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> lines = []
    >>> log = LambdaCallback(on_epoch_end=lambda epoch, logs: lines.append(f"{epoch}: {logs['loss']:.2f}"))
    >>> history = fit(Dense(2, 2), x, y, epochs=2, callbacks=[log], verbose=False, seed=0)
    >>> len(lines), history.history["loss"] == [h["loss"] for h in history.epochs]
    (2, True)
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CSVLogger",
    "Callback",
    "EarlyStopping",
    "History",
    "JSONLogger",
    "LambdaCallback",
    "ModelCheckpoint",
]

Logs = dict[str, Any]


class Callback:
    """Base class: override the hooks you need; every hook does nothing by default.

    Example:
        >>> class CountEpochs(Callback):
        ...     def on_train_begin(self, logs=None):
        ...         self.count = 0
        ...     def on_epoch_end(self, epoch, logs):
        ...         self.count += 1
        >>> cb = CountEpochs(); cb.on_train_begin(); cb.on_epoch_end(1, {}); cb.count
        1
    """

    model: Any = None
    optimizer: Any = None
    params: dict[str, Any]
    stop_training: bool = False

    def set_context(self, model: Any, optimizer: Any, params: dict[str, Any]) -> None:
        """Called by fit before ``on_train_begin``: the model, the optimizer and the run's parameters.

        Example:
            >>> cb = Callback(); cb.set_context(None, None, {"epochs": 3}); cb.params["epochs"]
            3
        """
        self.model, self.optimizer, self.params = model, optimizer, dict(params)
        self.stop_training = False

    def on_train_begin(self, logs: Logs | None = None) -> None:
        """Before the first epoch."""

    def on_train_end(self, logs: Logs | None = None) -> None:
        """After the last epoch (the model is in eval mode and, after mixed precision, float32 again)."""

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        """Before epoch ``epoch`` (from 1)."""

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        """After epoch ``epoch`` with its logs (loss, metrics, validation, lr, time)."""

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        """After the optimizer step of batch ``batch`` (from 0 in each epoch); logs: loss, size, epoch, step, lr."""


class History(Callback):
    """The per-epoch logs of a run (what :func:`~axiom.train.fit` returns).

    ``history.epochs`` is the list of epoch log dicts; ``history.history`` maps each name
    (``loss``, ``val_accuracy``, ``lr``...) to its list of values, like Keras.

    Example:
        >>> h = History()
        >>> h.on_epoch_end(1, {"loss": 0.5, "lr": 0.1}); h.on_epoch_end(2, {"loss": 0.25, "lr": 0.1})
        >>> h.history["loss"], h.epoch, h.last["loss"]
        ([0.5, 0.25], [1, 2], 0.25)
    """

    def __init__(self) -> None:
        self.epochs: list[Logs] = []

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.epochs = []

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self.epochs.append({"epoch": epoch, **logs})

    @property
    def epoch(self) -> list[int]:
        """The epoch numbers recorded (from 1)."""
        return [e["epoch"] for e in self.epochs]

    @property
    def history(self) -> dict[str, list[Any]]:
        """Name -> list of per-epoch values (a name missing in some epoch gets ``None`` there)."""
        names: list[str] = []
        for e in self.epochs:
            names += [k for k in e if k != "epoch" and k not in names]
        return {k: [e.get(k) for e in self.epochs] for k in names}

    @property
    def last(self) -> Logs:
        """The logs of the last epoch (empty before any)."""
        return dict(self.epochs[-1]) if self.epochs else {}

    def to_json(self) -> str:
        """The epoch logs as a JSON list.

        Example:
            >>> h = History(); h.on_epoch_end(1, {"loss": 1.0}); h.to_json()
            '[{"epoch": 1, "loss": 1.0}]'
        """
        return json.dumps([_jsonable(e) for e in self.epochs])

    def __repr__(self) -> str:
        return f"History({len(self.epochs)} epochs, keys={list(self.history)})"


def _jsonable(logs: Logs) -> Logs:
    out = {}
    for k, v in logs.items():
        if isinstance(v, np.generic):
            v = v.item()
        out[k] = None if isinstance(v, float) and not math.isfinite(v) else v
    return out


def _resolve_mode(mode: str, monitor: str, owner: str) -> str:
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        return "max" if "acc" in monitor else "min"
    return mode


def _check_monitor(monitor: str, params: dict[str, Any], owner: str) -> None:
    """Fail before training when a ``val_`` quantity is monitored without validation data (the common slip).

    Other names are checked when the first epoch ends: another callback may add them to the logs.
    """
    if monitor.startswith("val_") and params.get("do_validation") is False:
        keys = params.get("log_keys") or []
        raise ValueError(
            f"{owner}: monitor {monitor!r} will not be in the epoch logs: there is no validation data "
            f"(pass validation_data= or validation_split= to fit); available: {', '.join(keys)}"
        )


def _monitored(logs: Logs, monitor: str, owner: str) -> float:
    if monitor not in logs:
        raise ValueError(f"{owner}: monitor {monitor!r} is not in the epoch logs; available: {', '.join(logs)}")
    return float(logs[monitor])


class _Improvement:
    """Tracks the best value of a monitored quantity."""

    def __init__(self, mode: str, min_delta: float) -> None:
        self.mode, self.min_delta = mode, abs(min_delta)
        self.best = math.inf if mode == "min" else -math.inf

    def improves(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop after ``patience`` epochs in a row in which ``monitor`` did not improve by more than ``min_delta``.

    ``EarlyStopping(monitor="val_loss", patience=0, min_delta=0.0, mode="auto",
    restore_best=False)``; ``mode="auto"`` maximises names containing ``acc`` and minimises
    the rest. With ``restore_best=True`` the weights (and buffers) of the best epoch are put
    back at the end of training. ``stopped_epoch`` is the epoch it stopped after (0 if it
    did not), ``best_epoch`` and ``best`` the best epoch and value.

    Example:
        >>> stop = EarlyStopping(monitor="loss", patience=1)
        >>> stop.set_context(None, None, {}); stop.on_train_begin()
        >>> for epoch, loss in enumerate([1.0, 0.5, 0.6, 0.7], 1):
        ...     stop.on_epoch_end(epoch, {"loss": loss})
        ...     if stop.stop_training:
        ...         break
        >>> stop.stopped_epoch, stop.best_epoch, stop.best
        (3, 2, 0.5)
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 0,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = False,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an int >= 0, got {patience!r}")
        self.monitor = monitor
        self.patience = patience
        self.min_delta = float(min_delta)
        self.mode = _resolve_mode(mode, monitor, "EarlyStopping")
        self.restore_best = bool(restore_best)
        self.on_train_begin()

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if getattr(self, "params", None):
            _check_monitor(self.monitor, self.params, "EarlyStopping")
        self._tracker = _Improvement(self.mode, self.min_delta)
        self.wait = 0
        self.stopped_epoch = 0
        self.best_epoch = 0
        self.best: float | None = None
        self._best_state: Any = None

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        value = _monitored(logs, self.monitor, "EarlyStopping")
        if self._tracker.improves(value):
            self._tracker.best = value
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best and self.model is not None:
                self._best_state = self.model.state_dict()  # copies
            return
        self.wait += 1
        if self.wait >= self.patience:  # as Keras and Lightning: patience 0 and 1 both stop at the first miss
            self.stopped_epoch = epoch
            self.stop_training = True

    def on_train_end(self, logs: Logs | None = None) -> None:
        if self.restore_best and self._best_state is not None and self.model is not None:
            self.model.load_state_dict(self._best_state)


class ModelCheckpoint(Callback):
    """Save the model (safetensors, via ``model.save``) after epochs.

    ``ModelCheckpoint(path, monitor="val_loss", save_best_only=False, mode="auto")``. ``path``
    may contain ``{epoch}`` and any log name (``"ckpt-{epoch:02d}-{val_loss:.3f}.safetensors"``);
    missing directories are created. With ``save_best_only`` a file is written only when
    ``monitor`` improves. ``saved`` lists the paths written. With mixed precision the weights
    saved during training are the low-precision copies the model runs with.

    Example:
        >>> import os, tempfile
        >>> from axiom import Dense
        >>> with tempfile.TemporaryDirectory() as d:
        ...     ckpt = ModelCheckpoint(os.path.join(d, "m-{epoch}.safetensors"), monitor="loss", save_best_only=True)
        ...     ckpt.set_context(Dense(2, 1), None, {}); ckpt.on_train_begin()
        ...     for epoch, loss in enumerate([1.0, 2.0, 0.5], 1):
        ...         ckpt.on_epoch_end(epoch, {"loss": loss})
        ...     [os.path.basename(p) for p in ckpt.saved]
        ['m-1.safetensors', 'm-3.safetensors']
    """

    def __init__(
        self, path: str | os.PathLike[str], monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto"
    ) -> None:
        self.path = os.fspath(path)
        self.monitor = monitor
        self.save_best_only = bool(save_best_only)
        self.mode = _resolve_mode(mode, monitor, "ModelCheckpoint")
        self.saved: list[str] = []
        self._tracker = _Improvement(self.mode, 0.0)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        if self.save_best_only and getattr(self, "params", None):
            _check_monitor(self.monitor, self.params, "ModelCheckpoint")
        self._tracker = _Improvement(self.mode, 0.0)
        self.saved = []

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        if self.save_best_only:
            value = _monitored(logs, self.monitor, "ModelCheckpoint")
            if not self._tracker.improves(value):
                return
            self._tracker.best = value
        try:
            path = self.path.format(epoch=epoch, **logs)
        except (KeyError, IndexError, ValueError) as err:
            raise ValueError(
                f"ModelCheckpoint: cannot fill in path {self.path!r} ({err}); available: epoch, {', '.join(logs)}"
            ) from err
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.model.save(path)
        self.saved.append(path)


class _FileLogger(Callback):
    def __init__(self, path: str | os.PathLike[str], append: bool = False) -> None:
        self.path = Path(path)
        self.append = bool(append)

    def on_train_begin(self, logs: Logs | None = None) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.append and self.path.exists():
            self.path.unlink()


class CSVLogger(_FileLogger):
    """Append one CSV row per epoch (``epoch`` and every log value) to ``path``.

    The header comes from the first epoch's logs; the file is rewritten at the start of
    training unless ``append=True``. Rows are flushed every epoch, so the file is complete
    up to the last finished epoch even if training stops with an error.

    Example:
        >>> import os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     log = CSVLogger(os.path.join(d, "log.csv")); log.on_train_begin()
        ...     log.on_epoch_end(1, {"loss": 0.5, "accuracy": 0.75})
        ...     print(open(os.path.join(d, "log.csv")).read().strip())
        epoch,loss,accuracy
        1,0.5,0.75
    """

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        row = {"epoch": epoch, **_jsonable(logs)}
        new = not self.path.exists() or self.path.stat().st_size == 0
        if new:
            self._fields = list(row)
        elif not hasattr(self, "_fields"):
            with open(self.path, newline="", encoding="utf-8") as f:
                self._fields = next(csv.reader(f))
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=self._fields, extrasaction="ignore", restval="")
            if new:
                writer.writeheader()
            writer.writerow(row)


class JSONLogger(_FileLogger):
    """Write the whole history so far as a JSON list of epoch dicts to ``path`` after every epoch.

    Example:
        >>> import json, os, tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     log = JSONLogger(os.path.join(d, "log.json")); log.on_train_begin()
        ...     log.on_epoch_end(1, {"loss": 0.5}); log.on_epoch_end(2, {"loss": 0.25})
        ...     json.load(open(os.path.join(d, "log.json")))
        [{'epoch': 1, 'loss': 0.5}, {'epoch': 2, 'loss': 0.25}]
    """

    def on_train_begin(self, logs: Logs | None = None) -> None:
        super().on_train_begin(logs)
        self._epochs: list[Logs] = []
        if self.append and self.path.exists():
            self._epochs = json.loads(self.path.read_text(encoding="utf-8"))

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        self._epochs.append({"epoch": epoch, **_jsonable(logs)})
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self._epochs, indent=1) + "\n", encoding="utf-8")
        tmp.replace(self.path)  # never leave a half-written file


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``.

    Accepts ``on_train_begin(logs)``, ``on_train_end(logs)``, ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)`` and ``on_batch_end(batch, logs)``.

    Example:
        >>> seen = []
        >>> cb = LambdaCallback(on_batch_end=lambda batch, logs: seen.append(batch))
        >>> cb.on_batch_end(0, {}); cb.on_batch_end(1, {}); seen
        [0, 1]
    """

    _HOOKS = ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end", "on_batch_end")

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        for name, fn in hooks.items():
            if name not in self._HOOKS:
                raise TypeError(f"LambdaCallback: unknown hook {name!r}; expected one of {', '.join(self._HOOKS)}")
            if not callable(fn):
                raise TypeError(f"LambdaCallback: {name} must be callable, got {fn!r}")
            setattr(self, name, fn)


def callback_list(callbacks: Any) -> list[Callback]:
    """``callbacks`` (one or a sequence) as a new list, each checked to be a :class:`Callback`.

    Example:
        >>> [type(cb).__name__ for cb in callback_list(History())]
        ['History']
    """
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    out = list(callbacks or ())
    for i, cb in enumerate(out):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}] must be an axiom.train.Callback, got {type(cb).__name__}")
    return out
