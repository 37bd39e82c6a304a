"""Safe PyTorch checkpoint reading (axiom.io.pytorch_ckpt) against real torch 2.13 files and hostile ones."""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from axiom import Dense, MultiHeadAttention, ReLU, Sequential
from axiom.io._safe_unpickle import CheckpointError, UnsafeCheckpointError
from axiom.io._torch_descriptor import FORMAT, DescriptorError
from axiom.io._torch_layout import StateMismatchError
from axiom.io.pytorch_ckpt import load_checkpoint, read_checkpoint

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")

ARCH_MLP = {
    "format": FORMAT,
    "layers": [
        {"type": "Linear", "in_features": 4, "out_features": 8},
        {"type": "ReLU"},
        {"type": "Linear", "in_features": 8, "out_features": 3},
        {"type": "Softmax", "dim": 1},
    ],
}


def _mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3), torch.nn.Softmax(dim=1)
    ).eval()


def _torch_out(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


# -- hand-made archives (full control over the pickle) ------------------------------------------------


def _u(s: str) -> bytes:
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def _tup(ns: tuple[int, ...]) -> bytes:
    return b"(" + b"".join(_i(n) for n in ns) + b"t"


def _tensor_pickle(storage: str, key: str, numel: int, offset: int, size: tuple, stride: tuple) -> bytes:
    return (
        b"ctorch._utils\n_rebuild_tensor_v2\n("
        + b"("
        + _u("storage")
        + f"ctorch\n{storage}\n".encode()
        + _u(key)
        + _u("cpu")
        + _i(numel)
        + b"tQ"
        + _i(offset)
        + _tup(size)
        + _tup(stride)
        + b"\x89ccollections\nOrderedDict\n)Rt"
        + b"R"
    )


def _archive(path: Path, pkl_body: bytes, storages: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    """A zip laid out like torch.save's: archive/data.pkl, archive/data/<key>, archive/byteorder."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02}(" + pkl_body + b"u.")
        zf.writestr("archive/byteorder", b"little")
        zf.writestr("archive/version", b"3\n")
        for key, data in storages.items():
            zf.writestr(f"archive/data/{key}", data)
    return path


def _float_storage(n: int) -> bytes:
    return np.arange(n, dtype="<f4").tobytes()


def test_handmade_archive_matches_torch_load(tmp_path: Path) -> None:
    # the helper itself is sound: torch reads the same values as we do
    body = _u("w") + _tensor_pickle("FloatStorage", "0", 12, 1, (2, 3), (1, 4))
    path = _archive(tmp_path / "ok.pt", body, {"0": _float_storage(12)})
    ours = read_checkpoint(path)["w"]
    theirs = torch.load(path, weights_only=True)["w"].numpy()
    np.testing.assert_array_equal(ours, theirs)
    assert ours.flags.c_contiguous and ours.flags.writeable


@pytest.mark.parametrize(
    ("offset", "size", "stride", "why"),
    [
        (100, (2,), (1,), "reaches element"),  # offset past the end
        (0, (3, 5), (5, 1), "reaches element"),  # 15 elements from a 12-element storage
        (0, (2, 2), (1, 11), "reaches element"),  # stride walks off the end
        (-1, (2,), (1,), "negative"),
        (0, (2, 2), (-1, 1), "negative"),
        (13, (0,), (1,), "past the end"),
    ],
)
def test_out_of_bounds_views_are_rejected(tmp_path: Path, offset: int, size: tuple, stride: tuple, why: str) -> None:
    body = _u("w") + _tensor_pickle("FloatStorage", "0", 12, offset, size, stride)
    path = _archive(tmp_path / "oob.pt", body, {"0": _float_storage(12)})
    with pytest.raises(CheckpointError, match=why):
        read_checkpoint(path)


def test_wrong_dtype_or_size_of_storage_is_rejected(tmp_path: Path) -> None:
    # declared DoubleStorage of 12 elements (96 bytes) but the entry holds 12 float32 (48 bytes)
    body = _u("w") + _tensor_pickle("DoubleStorage", "0", 12, 0, (12,), (1,))
    path = _archive(tmp_path / "dtype.pt", body, {"0": _float_storage(12)})
    with pytest.raises(CheckpointError, match="holds 48 bytes; the pickle declares 96"):
        read_checkpoint(path)
    # a storage type outside the allow-list
    body = _u("w") + _tensor_pickle("ComplexFloatStorage", "0", 6, 0, (6,), (1,))
    path = _archive(tmp_path / "complex.pt", body, {"0": _float_storage(12)})
    with pytest.raises(UnsafeCheckpointError, match="torch.ComplexFloatStorage"):
        read_checkpoint(path)
    # one storage declared with two dtypes
    body = (
        _u("a")
        + _tensor_pickle("FloatStorage", "0", 12, 0, (12,), (1,))
        + _u("b")
        + _tensor_pickle("IntStorage", "0", 12, 0, (12,), (1,))
    )
    path = _archive(tmp_path / "two.pt", body, {"0": _float_storage(12)})
    with pytest.raises(CheckpointError, match="one dtype and size per storage"):
        read_checkpoint(path)


class _Evil:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.sentinel}",))


class _EvalEvil:
    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):  # noqa: ANN204
        return (eval, (f"open({str(self.sentinel)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [_Evil, _EvalEvil])
def test_malicious_reduce_is_rejected_without_running(tmp_path: Path, payload: type) -> None:
    sentinel = tmp_path / "pwned"
    path = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(2), "x": payload(sentinel)}, path)
    # the payload is live: plain pickle would run it
    with zipfile.ZipFile(path) as zf:
        raw = zf.read(next(n for n in zf.namelist() if n.endswith("data.pkl")))
    assert b"system" in raw or b"eval" in raw
    with pytest.raises(UnsafeCheckpointError, match="refuses global"):
        read_checkpoint(path)
    with pytest.raises(UnsafeCheckpointError):
        load_checkpoint(path, ARCH_MLP)
    assert not sentinel.exists()


def test_pickled_module_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "whole.pt"
    torch.save(_mlp(), path)
    with pytest.raises(UnsafeCheckpointError, match="save model.state_dict"):
        read_checkpoint(path)


def test_truncated_and_non_zip_files_are_rejected(tmp_path: Path) -> None:
    good = tmp_path / "good.pt"
    torch.save(_mlp().state_dict(), good)
    data = good.read_bytes()
    for cut in (10, len(data) // 3, len(data) // 2, len(data) - 30):
        bad = tmp_path / f"cut{cut}.pt"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError):
            read_checkpoint(bad)
    # a corrupted storage byte is caught by the zip CRC
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("good/data/0")
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26 : info.header_offset + 30])
    pos = info.header_offset + 30 + name_len + extra_len  # first byte of the storage
    corrupt = bytearray(data)
    corrupt[pos] ^= 0xFF
    bad = tmp_path / "crc.pt"
    bad.write_bytes(bytes(corrupt))
    with pytest.raises(CheckpointError):
        read_checkpoint(bad)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"hello world")
    with pytest.raises(CheckpointError, match="not a torch checkpoint"):
        read_checkpoint(junk)


def test_legacy_format_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "legacy.pt"
    torch.save(_mlp().state_dict(), path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy"):
        read_checkpoint(path)


# -- real checkpoints ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_state_dict_dtypes_load_exactly(tmp_path: Path, dtype: torch.dtype) -> None:
    net = _mlp().to(dtype)
    path = tmp_path / "sd.pth"
    torch.save(net.state_dict(), path)
    state = read_checkpoint(path)
    assert isinstance(state, OrderedDict) and list(state) == list(net.state_dict())
    for key, value in net.state_dict().items():
        assert state[key].dtype.name == str(dtype).removeprefix("torch.")
        np.testing.assert_array_equal(state[key].astype(np.float64), value.double().numpy())
    model = load_checkpoint(path, ARCH_MLP)
    assert model.param_dtype().name == str(dtype).removeprefix("torch.")
    np.testing.assert_array_equal(
        model.layers[0].weight.numpy().astype(np.float64), net[0].weight.detach().double().T.numpy()
    )
    if dtype in (torch.float32, torch.float64):
        x = np.random.default_rng(1).normal(size=(5, 4)).astype(str(dtype).removeprefix("torch."))
        tol = 1e-6 if dtype == torch.float32 else 1e-12
        np.testing.assert_allclose(model(x).numpy(), _torch_out(net, x), atol=tol)


def test_strided_views_sharing_a_storage(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    views = {
        "base": base,
        "t": base.t(),
        "cols": base[1:, ::2],
        "scalar": base[2, 3],
        "empty": base[:0],
        "expand": torch.arange(3.0).expand(4, 3),  # stride 0
        "long": torch.arange(5, dtype=torch.int64)[1:],
        "bool": torch.tensor([True, False, True]),
    }
    path = tmp_path / "views.pt"
    torch.save(views, path)
    with zipfile.ZipFile(path) as zf:  # the views really share one storage
        assert sum(1 for n in zf.namelist() if "/data/" in n) == 4
    got = read_checkpoint(path)
    for key, value in views.items():
        assert got[key].shape == tuple(value.shape), key
        np.testing.assert_array_equal(got[key], value.numpy(), err_msg=key)
    got["t"][0, 0] = 99.0  # independent copies: writing one view leaves the others alone
    assert got["base"][0, 0] == 0.0


def test_lightning_checkpoint(tmp_path: Path) -> None:
    net = _mlp()
    ckpt = {
        "epoch": 3,
        "global_step": 120,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": OrderedDict((f"model.{k}", v) for k, v in net.state_dict().items()),
        "optimizer_states": [{"state": {0: {"exp_avg": torch.zeros(8, 4)}}, "param_groups": [{"lr": 1e-3}]}],
        "hyper_parameters": {"hidden": 8},
    }
    path = tmp_path / "last.ckpt"
    torch.save(ckpt, path)
    model = load_checkpoint(path, ARCH_MLP)
    x = np.random.default_rng(2).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(model(x).numpy(), _torch_out(net, x), atol=1e-6)
    assert read_checkpoint(path)["hyper_parameters"] == {"hidden": 8}


def test_cnn_with_descriptor_file_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, stride=2, padding=1),
        torch.nn.BatchNorm2d(6),
        torch.nn.ReLU(),
        torch.nn.Conv2d(6, 4, (3, 2), groups=2, bias=False),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 1 * 2, 5),
        torch.nn.GELU(),
    ).eval()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    arch = {
        "format": FORMAT,
        "layers": [
            {"type": "Conv2d", "in_channels": 3, "out_channels": 6, "kernel_size": 3, "stride": 2, "padding": 1},
            {"type": "BatchNorm2d", "num_features": 6},
            {"type": "ReLU"},
            {"type": "Conv2d", "in_channels": 6, "out_channels": 4, "kernel_size": [3, 2], "groups": 2, "bias": False},
            {"type": "MaxPool2d", "kernel_size": 2},
            {"type": "Flatten"},
            {"type": "Linear", "in_features": 8, "out_features": 5},
            {"type": "GELU"},
        ],
    }
    (tmp_path / "arch.json").write_text(json.dumps(arch))
    torch.save(net.state_dict(), tmp_path / "cnn.pt")
    model = load_checkpoint(tmp_path / "cnn.pt", str(tmp_path / "arch.json"))
    x = np.random.default_rng(4).normal(size=(2, 3, 10, 10)).astype(np.float32)
    np.testing.assert_allclose(model(x.transpose(0, 2, 3, 1)).numpy(), _torch_out(net, x), atol=1e-5)


def test_load_into_axiom_model_and_mismatches(tmp_path: Path) -> None:
    net = _mlp()
    path = tmp_path / "sd.pt"
    torch.save(net.state_dict(), path)
    target = Sequential(Dense(4, 8), ReLU(), Dense(8, 3))
    assert load_checkpoint(path, target) is target
    x = np.random.default_rng(5).normal(size=(2, 4)).astype(np.float32)
    expected = _torch_out(net[:3], x)
    np.testing.assert_allclose(target(x).numpy(), expected, atol=1e-6)
    with pytest.raises(StateMismatchError, match=r"has shape \(3, 8\), the model expects \(4, 8\)"):
        load_checkpoint(path, Sequential(Dense(4, 8), ReLU(), Dense(8, 4)))
    with pytest.raises(StateMismatchError, match=r"unexpected keys \['2.weight', '2.bias'\]"):
        load_checkpoint(path, Sequential(Dense(4, 8)))
    with pytest.raises(StateMismatchError, match=r"missing keys \['3.weight', '3.bias'\]"):
        load_checkpoint(path, Sequential(Dense(4, 8), ReLU(), Dense(8, 3), Dense(3, 3)))
    np.testing.assert_allclose(target(x).numpy(), expected, atol=1e-6)  # failed loads changed nothing
    with pytest.raises(CheckpointError, match="pass architecture="):
        load_checkpoint(path)


def test_multihead_attention_state_dict(tmp_path: Path) -> None:
    torch.manual_seed(6)
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True).eval()
    path = tmp_path / "mha.pt"
    torch.save(mha.state_dict(), path)
    model = load_checkpoint(path, MultiHeadAttention(8, 2))
    x = np.random.default_rng(7).normal(size=(2, 5, 8)).astype(np.float32)
    with torch.no_grad():
        expected = mha(*(torch.from_numpy(x),) * 3, need_weights=False)[0].numpy()
    np.testing.assert_allclose(model(x).numpy(), expected, atol=1e-5)


def test_descriptor_errors_name_the_layer(tmp_path: Path) -> None:
    path = tmp_path / "sd.pt"
    torch.save(_mlp().state_dict(), path)
    bad_type = {"format": FORMAT, "layers": [{"type": "Linear", "in_features": 4, "out_features": 8}, {"type": "LSTM"}]}
    with pytest.raises(DescriptorError, match=r"layer 1 \(LSTM\): torch layer type 'LSTM' is not supported"):
        load_checkpoint(path, bad_type)
    bad_arg = {"format": FORMAT, "layers": [{"type": "Linear", "in_features": 4, "out_features": 8, "size": 3}]}
    with pytest.raises(DescriptorError, match=r"layer 0 \(Linear\): unknown argument\(s\) \['size'\]"):
        load_checkpoint(path, bad_arg)
    with pytest.raises(DescriptorError, match="'format'"):
        load_checkpoint(path, {"layers": []})


# -- TorchScript ---------------------------------------------------------------------------------------


def test_torchscript_sequential_without_architecture(tmp_path: Path) -> None:
    torch.manual_seed(8)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1),
        torch.nn.BatchNorm2d(4),
        torch.nn.ReLU(),
        torch.nn.AvgPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 3 * 3, 5),
        torch.nn.LogSoftmax(dim=1),
    ).eval()
    path = tmp_path / "scripted.pt"
    torch.jit.script(net).save(str(path))
    model = load_checkpoint(path)
    x = np.random.default_rng(9).normal(size=(3, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(model(x.transpose(0, 2, 3, 1)).numpy(), _torch_out(net, x), atol=1e-5)


class _Custom(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.relu(self.fc(x)) * 2)


def test_torchscript_custom_code_needs_architecture(tmp_path: Path) -> None:
    path = tmp_path / "custom.pt"
    torch.jit.script(_Custom()).save(str(path))
    with pytest.raises(CheckpointError, match="not a torch.nn.Sequential; its code cannot be mapped"):
        load_checkpoint(path)
    # with an architecture the parameters are read; names are matched structurally (fc.*, out.*)
    with pytest.raises(StateMismatchError, match=r"unexpected keys \['fc.weight', 'fc.bias', 'out.weight'"):
        load_checkpoint(path, Sequential(Dense(4, 8), ReLU(), Dense(8, 3)))


def test_restricted_unpickler_never_imports(tmp_path: Path) -> None:
    # a pickle naming a harmless-looking global still fails: the allow-list is exact
    data = pickle.dumps(io.BytesIO, protocol=2)
    body = _u("x") + data[2:-1]
    path = _archive(tmp_path / "g.pt", body, {})
    with pytest.raises(UnsafeCheckpointError, match="_io.BytesIO"):
        read_checkpoint(path)


def test_stride_zero_expansion_is_bounded(tmp_path: Path) -> None:
    # 4 bytes of storage viewed as 2**31 elements through stride 0: refused before allocating 8 GiB
    body = _u("w") + _tensor_pickle("FloatStorage", "0", 1, 0, (1 << 16, 1 << 15), (0, 0))
    path = _archive(tmp_path / "bomb.pt", body, {"0": _float_storage(1)})
    with pytest.raises(CheckpointError, match="would allocate 8589934592 bytes"):
        read_checkpoint(path)


def test_pickle_cannot_modify_the_stand_ins(tmp_path: Path) -> None:
    # GLOBAL torch.FloatStorage, then BUILD (None, {"dtype": 1}): would retype every later FloatStorage
    body = _u("m") + b"ctorch\nFloatStorage\nN}" + _u("dtype") + b"K\x01s\x86b"
    path = _archive(tmp_path / "poison.pt", body, {})
    with pytest.raises(UnsafeCheckpointError, match="tries to set 'dtype'"):
        read_checkpoint(path)
    body = _u("f") + b"ctorch._utils\n_rebuild_tensor_v2\nN}" + _u("__defaults__") + b")s\x86b"
    path = _archive(tmp_path / "defaults.pt", body, {})
    with pytest.raises(UnsafeCheckpointError, match="tries to set '__defaults__'"):
        read_checkpoint(path)
    ok = _archive(
        tmp_path / "ok.pt", _u("w") + _tensor_pickle("FloatStorage", "0", 2, 0, (2,), (1,)), {"0": _float_storage(2)}
    )
    assert read_checkpoint(ok)["w"].dtype == np.float32


def test_compressed_entries_are_refused(tmp_path: Path) -> None:
    body = _u("w") + _tensor_pickle("FloatStorage", "0", 4, 0, (4,), (1,))
    path = _archive(tmp_path / "deflated.pt", body, {"0": _float_storage(4)}, compression=zipfile.ZIP_DEFLATED)
    with pytest.raises(CheckpointError, match="storage entry archive/data/0 is compressed"):
        read_checkpoint(path)


def test_nested_sequential_embedding_layernorm_protocol4_via_from_pytorch(tmp_path: Path) -> None:
    from axiom.io import from_pytorch

    torch.manual_seed(10)
    net = torch.nn.Sequential(
        torch.nn.Embedding(10, 4),
        torch.nn.LayerNorm(4),
        torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3)),
        torch.nn.Tanh(),
    ).eval()
    path = tmp_path / "emb.pt"
    torch.save(net.state_dict(), path, pickle_protocol=4)  # STACK_GLOBAL / FRAME opcodes
    assert list(read_checkpoint(path)) == ["0.weight", "1.weight", "1.bias", "2.1.weight", "2.1.bias"]
    arch = {
        "format": FORMAT,
        "layers": [
            {"type": "Embedding", "num_embeddings": 10, "embedding_dim": 4},
            {"type": "LayerNorm", "normalized_shape": 4},
            {
                "type": "Sequential",
                "layers": [{"type": "Flatten"}, {"type": "Linear", "in_features": 12, "out_features": 3}],
            },
            {"type": "Tanh"},
        ],
    }
    model = from_pytorch(str(path), architecture=arch)
    x = np.array([[1, 2, 3], [9, 0, 4]])
    np.testing.assert_allclose(model(x).numpy(), _torch_out(net, x), atol=1e-6)
