"""Progress output of :func:`axiom.train.fit`: a tqdm bar per epoch on a terminal, plain lines otherwise.

``fit(verbose="auto")`` (the default) shows a bar when standard output is a terminal and
prints one line per epoch when it is not (a log file, CI, a notebook's captured output);
``verbose=False`` prints nothing. :func:`progress_mode` makes that choice and
:class:`Progress` is the callback that prints.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> p = Progress("lines", file=out)
    >>> p.set_context(None, None, {"epochs": 2, "steps": 3})
    >>> p.on_epoch_end(1, {"loss": 0.5, "accuracy": 0.75, "lr": 0.001, "time": 0.25})
    >>> print(out.getvalue().strip())
    epoch 1/2 - loss 0.5000 - accuracy 0.7500 - lr 1.0e-03 - 0.25s
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from axiom.train.callbacks import Callback, Logs

__all__ = ["Progress", "format_logs", "progress_mode"]

_VERBOSE = ("auto", "bar", "lines", None, 0, 1, 2)  # bools are mapped to these first


def progress_mode(verbose: Any, file: TextIO | None = None) -> str | None:
    """``"bar"``, ``"lines"`` or ``None`` (silent) for a ``verbose`` setting.

    ``"auto"``, ``True`` and ``1`` give a bar on a terminal and lines otherwise; ``"lines"``
    and ``2`` always lines; ``"bar"`` always a bar; ``False``, ``None`` and ``0`` nothing.

    Example:
        >>> import io
        >>> progress_mode("auto", io.StringIO()), progress_mode(False), progress_mode(2)
        ('lines', None, 'lines')
    """
    if isinstance(verbose, bool) or verbose is None:
        verbose = "auto" if verbose else None
    if verbose not in _VERBOSE:
        raise ValueError(f"verbose must be 'auto', 'bar', 'lines', True/False or 0/1/2, got {verbose!r}")
    if verbose in (None, 0):
        return None
    if verbose in ("lines", 2):
        return "lines"
    if verbose == "bar":
        return "bar"
    stream = file if file is not None else sys.stdout
    isatty = getattr(stream, "isatty", None)
    return "bar" if isatty is not None and isatty() else "lines"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.1e}" if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5) else f"{value:.4f}"
    return str(value)


def format_logs(logs: Logs) -> str:
    """One epoch's logs as ``name value - name value ...`` (lr in scientific notation, time last).

    Example:
        >>> format_logs({"loss": 0.123456, "val_accuracy": 0.5, "lr": 0.01, "time": 1.5})
        'loss 0.1235 - val_accuracy 0.5000 - lr 1.0e-02 - 1.50s'
    """
    parts = []
    for key, value in logs.items():
        if key in ("time", "epoch"):
            continue
        parts.append(f"lr {value:.1e}" if key == "lr" and isinstance(value, float) else f"{key} {_fmt(value)}")
    if "time" in logs:
        parts.append(f"{logs['time']:.2f}s")
    return " - ".join(parts)


class Progress(Callback):
    """Prints training progress: ``mode="bar"`` (tqdm, one bar per epoch) or ``"lines"`` (one line per epoch).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> p = Progress("bar", file=out)
        >>> p.set_context(None, None, {"epochs": 1, "steps": 2})
        >>> p.on_epoch_begin(1); p.on_batch_end(0, {"loss": 1.0}); p.on_batch_end(1, {"loss": 0.5})
        >>> p.on_epoch_end(1, {"loss": 0.75, "time": 0.1})
        >>> "2/2" in out.getvalue() and "loss 0.7500" in out.getvalue()
        True
    """

    def __init__(self, mode: str = "lines", file: TextIO | None = None) -> None:
        if mode not in ("bar", "lines"):
            raise ValueError(f"Progress: mode must be 'bar' or 'lines', got {mode!r}")
        self.mode = mode
        self.file = file
        self._bar: Any = None

    @property
    def _out(self) -> TextIO:
        return self.file if self.file is not None else sys.stdout

    def on_epoch_begin(self, epoch: int, logs: Logs | None = None) -> None:
        if self.mode == "bar":
            from tqdm import tqdm

            width = len(str(self.params.get("epochs", "")))
            self._bar = tqdm(
                total=self.params.get("steps"),
                desc=f"epoch {epoch:>{width}}/{self.params.get('epochs', '?')}",
                file=self._out,
                leave=True,
                unit="step",
                dynamic_ncols=True,
            )

    def on_batch_end(self, batch: int, logs: Logs) -> None:
        if self._bar is not None:
            self._bar.update(1)
            if "loss" in logs:
                self._bar.set_postfix_str(f"loss {logs['loss']:.4f}", refresh=False)

    def on_epoch_end(self, epoch: int, logs: Logs) -> None:
        text = format_logs(logs)
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)
            self.close()
        elif self.mode == "lines":
            print(f"epoch {epoch}/{self.params.get('epochs', '?')} - {text}", file=self._out, flush=True)

    def on_train_end(self, logs: Logs | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Close an open bar (fit calls this also when training stops with an error).

        Example:
            >>> Progress().close()
        """
        if self._bar is not None:
            self._bar.close()
            self._bar = None
