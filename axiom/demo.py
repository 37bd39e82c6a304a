"""`make demo`: the main job end to end: define, shape-check, run, compare backends, verify.

Run it with ``python -m axiom.demo``. Later issues extend it with training and certificates.
"""

from __future__ import annotations

import time

import numpy as np

from axiom import Conv2d, Dense, Sequential, ShapeError, Softmax, Tensor, available_backends, get_backend, relu
from axiom.nn.init import manual_seed


def _banner(title: str) -> None:
    print(f"\n== {title} " + "=" * max(0, 60 - len(title)))


def main() -> int:
    manual_seed(0)
    _banner("1. define the README model (shapes checked now)")
    model = Sequential(Dense(784, 128, relu), Dense(128, 10), Softmax())
    print(model)
    n_params = sum(p.size for p in model.parameters())
    print(f"parameters: {n_params:,}; input {model.input_shape} -> output {model.output_shape(model.input_shape)}")

    _banner("2. a shape error is caught when the model is defined")
    try:
        Sequential(Conv2d(3, 64, (3, 3)), Dense(10), input_shape=(None, 224, 224, 3))
    except ShapeError as err:
        print(f"ShapeError: {err}")
    else:  # pragma: no cover - would be a bug
        raise SystemExit("expected a ShapeError")

    _banner("3. run a batch")
    x = Tensor(np.random.default_rng(0).standard_normal((16, 784)).astype(np.float32))
    t0 = time.perf_counter()
    y = model(x)
    ms = (time.perf_counter() - t0) * 1e3
    assert y.shape == (16, 10), y.shape
    sums = y.numpy().sum(axis=1)
    assert np.allclose(sums, 1.0, atol=1e-5), sums
    print(f"output {y.shape} {y.dtype.name} in {ms:.2f} ms; rows sum to 1 (max |sum-1| = {abs(sums - 1).max():.1e})")
    print(f"predicted classes: {y.numpy().argmax(axis=1).tolist()}")

    _banner("4. the same matmul on every compiled backend")
    a = np.random.default_rng(1).standard_normal((257, 129)).astype(np.float32)
    b = np.random.default_rng(2).standard_normal((129, 65)).astype(np.float32)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    for name in available_backends():
        out = get_backend(name).matmul(a, b)
        print(f"  {name:6s} max |err| vs float64 NumPy: {np.abs(out - ref).max():.2e}")
    _banner("5. verify: empirical on the batch, formal around one input")
    from axiom import verify
    from axiom.verify import FiniteOutput, LocalRobustness, ValidProbabilities

    r = verify(model, properties=[ValidProbabilities(), FiniteOutput()], data=[(x, None)])
    assert r.passed and r.kind == "empirical"
    print(r.summary())
    robust = LocalRobustness(x.numpy()[0], eps=1e-3)  # label: the model's own prediction
    r = verify(model, properties=[robust, ValidProbabilities(over=robust.input_set)], timeout=60)
    print(r.summary())
    for res in r:
        if res.status == "falsified":  # a real counterexample, replayed through the model
            print(f"  counterexample found; output {res.output.round(3).tolist()}")
    print("\ndemo OK")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
