"""axiom.train.callbacks (through fit): early stopping, checkpoints, loggers, lambdas, hook order."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from axiom import Dense, Sequential
from axiom.nn.init import manual_seed
from axiom.train import (
    SGD,
    Adam,
    Callback,
    CSVLogger,
    EarlyStopping,
    JSONLogger,
    LambdaCallback,
    ModelCheckpoint,
    fit,
    make_blobs,
)


@pytest.fixture()
def data() -> tuple[np.ndarray, np.ndarray]:
    return make_blobs(96, centers=3, seed=1)


def model(seed: int = 0) -> Sequential:
    manual_seed(seed)
    return Sequential(Dense(2, 8, "relu"), Dense(8, 3))


class Recorder(Callback):
    """Records hook calls and the weights at each epoch end."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.states: dict[int, dict[str, np.ndarray]] = {}

    def on_train_begin(self, logs=None):  # type: ignore[no-untyped-def]
        self.calls.append(f"train_begin training={self.model.training}")

    def on_epoch_begin(self, epoch, logs=None):  # type: ignore[no-untyped-def]
        self.calls.append(f"epoch_begin {epoch}")

    def on_batch_end(self, batch, logs):  # type: ignore[no-untyped-def]
        self.calls.append(f"batch {batch} training={self.model.training}")

    def on_epoch_end(self, epoch, logs):  # type: ignore[no-untyped-def]
        self.calls.append(f"epoch_end {epoch}")
        self.states[epoch] = self.model.state_dict()

    def on_train_end(self, logs=None):  # type: ignore[no-untyped-def]
        self.calls.append(f"train_end training={self.model.training}")


def test_hook_order_and_context(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    rec = Recorder()
    m = model()
    opt = SGD(m.parameters(), lr=0.1)
    fit(m, x, y, optimizer=opt, epochs=2, batch_size=48, callbacks=[rec], verbose=False)
    assert rec.calls == [
        "train_begin training=False",
        "epoch_begin 1",
        "batch 0 training=True",
        "batch 1 training=True",
        "epoch_end 1",
        "epoch_begin 2",
        "batch 0 training=True",
        "batch 1 training=True",
        "epoch_end 2",
        "train_end training=False",
    ]
    assert rec.model is m and rec.optimizer is opt
    assert rec.params["epochs"] == 2 and rec.params["steps"] == 2 and rec.params["samples"] == 96


def test_early_stopping_stops_after_patience(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    m = model()
    stop = EarlyStopping(monitor="val_loss", patience=2)
    # lr 0: nothing improves after the first epoch
    h = fit(m, x, y, optimizer=SGD(m.parameters(), lr=0.0), epochs=10, validation_split=0.25, callbacks=[stop])
    assert h.epoch == [1, 2, 3] and stop.stopped_epoch == 3 and stop.best_epoch == 1


def test_early_stopping_min_delta_and_mode(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    m = model()
    stop = EarlyStopping(monitor="accuracy", patience=1, min_delta=1.0)  # accuracy can never improve by 1
    h = fit(m, x, y, optimizer=Adam(m.parameters(), lr=0.01), epochs=10, callbacks=[stop], verbose=False)
    assert stop.mode == "max" and h.epoch == [1, 2]


def test_early_stopping_restores_the_best_weights(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    rec = Recorder()
    m = model()
    values = iter([3.0, 1.0, 2.0, 2.5, 0.5])

    def fake_monitor(epoch: int, logs: dict) -> None:
        logs["score"] = next(values)  # callbacks after this one see it

    stop = EarlyStopping(monitor="score", mode="min", patience=2, restore_best=True)
    cbs = [LambdaCallback(on_epoch_end=fake_monitor), rec, stop]
    h = fit(m, x, y, optimizer=Adam(m.parameters(), lr=0.05), epochs=5, callbacks=cbs, verbose=False)
    assert h.epoch == [1, 2, 3, 4] and stop.best_epoch == 2 and stop.best == 1.0
    best, final = rec.states[2], m.state_dict()
    assert all(np.array_equal(best[k], final[k]) for k in best)
    assert not all(np.array_equal(rec.states[4][k], final[k]) for k in best)


def test_monitor_that_will_not_exist_fails_before_training(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data
    m = model()
    before = m.state_dict()
    with pytest.raises(
        ValueError, match="monitor 'val_loss' will not be in the epoch logs: there is no validation data"
    ):
        fit(m, x, y, epochs=2, callbacks=[EarlyStopping()], verbose=False)  # no validation data
    assert all(np.array_equal(before[k], v) for k, v in m.state_dict().items())
    with pytest.raises(ValueError, match="monitor 'acc' is not in the epoch logs; available: loss, accuracy"):
        fit(m, x, y, epochs=2, callbacks=[EarlyStopping(monitor="acc")], verbose=False)
    with pytest.raises(ValueError, match="patience must be an int >= 0"):
        EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match="mode must be 'auto', 'min' or 'max'"):
        EarlyStopping(mode="up")


def test_model_checkpoint_every_epoch_and_best_only(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = data
    rec = Recorder()
    m = model()
    every = ModelCheckpoint(tmp_path / "all" / "e{epoch:02d}.safetensors", monitor="loss")
    best = ModelCheckpoint(tmp_path / "best-{epoch}-{val_loss:.3f}.safetensors", save_best_only=True)
    cbs = [rec, every, best]
    h = fit(m, x, y, optimizer=Adam(m.parameters(), lr=0.02), epochs=3, validation_split=0.25, callbacks=cbs)
    assert [Path(p).name for p in every.saved] == ["e01.safetensors", "e02.safetensors", "e03.safetensors"]
    for epoch, path in enumerate(every.saved, 1):
        loaded = model(seed=99)
        loaded.load(path)
        assert all(np.array_equal(loaded.state_dict()[k], v) for k, v in rec.states[epoch].items())
    assert best.saved and all(Path(p).exists() for p in best.saved)
    assert Path(best.saved[0]).name == f"best-1-{h.history['val_loss'][0]:.3f}.safetensors"
    improved = [e for e in (2, 3) if h.history["val_loss"][e - 1] < min(h.history["val_loss"][: e - 1])]
    assert len(best.saved) == 1 + len(improved)


def test_model_checkpoint_bad_path_template(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = data
    with pytest.raises(ValueError, match=r"cannot fill in path .*available: epoch, loss"):
        fit(model(), x, y, epochs=1, callbacks=[ModelCheckpoint(tmp_path / "{acc}.st", monitor="loss")], verbose=False)


def test_csv_and_json_loggers_match_the_history(data: tuple[np.ndarray, np.ndarray], tmp_path: Path) -> None:
    x, y = data
    csv_path, json_path = tmp_path / "log.csv", tmp_path / "logs" / "log.json"
    h = fit(model(), x, y, epochs=3, validation_split=0.25, callbacks=[CSVLogger(csv_path), JSONLogger(json_path)])
    with open(csv_path, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [float(r["val_loss"]) for r in rows] == pytest.approx(h.history["val_loss"])
    assert json.loads(json_path.read_text()) == json.loads(h.to_json())
    # a second run rewrites; append=True continues the file
    fit(model(), x, y, epochs=1, callbacks=[CSVLogger(csv_path)], verbose=False)
    fit(model(), x, y, epochs=2, callbacks=[CSVLogger(csv_path, append=True)], verbose=False)
    with open(csv_path, newline="") as f:
        assert [r["epoch"] for r in csv.DictReader(f)] == ["1", "1", "2"]


def test_lambda_callback_checks_hook_names() -> None:
    with pytest.raises(TypeError, match="unknown hook 'on_step'"):
        LambdaCallback(on_step=lambda: None)
    with pytest.raises(TypeError, match="callbacks\\[0\\] must be an axiom.train.Callback"):
        fit(model(), np.zeros((4, 2), np.float32), np.zeros(4, np.int64), callbacks=[print], verbose=False)


def test_a_callback_can_stop_training(data: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = data

    class StopAtTwo(Callback):
        def on_epoch_end(self, epoch, logs):  # type: ignore[no-untyped-def]
            self.stop_training = epoch == 2

    h = fit(model(), x, y, epochs=5, callbacks=[StopAtTwo()], verbose=False)
    assert h.epoch == [1, 2]
    h = fit(model(), x, y, epochs=3, callbacks=[StopAtTwo()], verbose=False)  # state is reset per run
    assert h.epoch == [1, 2]
