"""Branch-and-bound: batched bounds, split constraints, soundness, determinism, budget, benchmarks."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from axiom import Dense, Sequential, manual_seed, relu
from axiom.verify import Box, OutputBounds, verify
from axiom.verify.bab import branch_and_bound
from axiom.verify.bab._crown import spec_bounds
from axiom.verify.bab._net import relu_chain
from axiom.verify.bounds import compute_bounds

BENCH = Path(__file__).resolve().parents[2].parent / "shared" / "benchmarks"


def _net(seed: int, n_in: int = 3, width: int = 12, depth: int = 2, n_out: int = 2) -> Sequential:
    manual_seed(seed)
    layers = [Dense(n_in, width, relu)] + [Dense(width, width, relu) for _ in range(depth - 1)] + [Dense(width, n_out)]
    return Sequential(*layers)


def _boxes(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    lo = rng.uniform(-1, 0.5, (n, dim))
    return lo, lo + rng.uniform(0.01, 0.5, (n, dim))


def test_batched_bounds_equal_per_domain_and_match_crown() -> None:
    rng = np.random.default_rng(0)
    model = _net(1)
    net = relu_chain(model, (3,))
    assert net is not None
    lo, hi = _boxes(rng, 6, 3)
    C = np.array([[1.0, -1.0], [0.0, 1.0]])
    batch = spec_bounds(net, lo, hi, C)
    for i in range(6):
        one = spec_bounds(net, lo[i : i + 1], hi[i : i + 1], C)
        np.testing.assert_allclose(one.lower[0], batch.lower[i], rtol=0, atol=1e-12)
        ref = compute_bounds(model, Box(lo[i], hi[i]), "crown", C=C).lower
        np.testing.assert_allclose(batch.lower[i], ref, rtol=0, atol=1e-9)


@pytest.mark.parametrize("seed", range(4))
def test_bounds_with_split_constraints_contain_every_feasible_sample(seed: int) -> None:
    rng = np.random.default_rng(seed)
    model = _net(seed, width=10, depth=2)
    net = relu_chain(model, (3,))
    lo, hi = _boxes(rng, 1, 3)
    root = spec_bounds(net, lo, hi, np.eye(2))
    splits = [np.zeros((1, 10), np.int8) for _ in range(2)]
    unstable = np.flatnonzero((root.pre[0][0][0] < 0) & (root.pre[0][1][0] > 0))
    for k, j in enumerate(unstable[:2]):
        splits[0][0, j] = 1 if k == 0 else -1
    res = spec_bounds(net, lo, hi, np.vstack([np.eye(2), -np.eye(2)]), splits, root.pre)
    xs = rng.uniform(lo[0], hi[0], (20000, 3))
    z0 = xs @ net.W[0].T + net.b[0]
    feasible = np.all(np.where(splits[0][0] > 0, z0 >= 0, True) & np.where(splits[0][0] < 0, z0 <= 0, True), axis=1)
    y = model(xs[feasible].astype(np.float32)).numpy().astype(np.float64)
    if feasible.any():
        assert np.all(y >= res.lower[0, :2] - 1e-5) and np.all(-y >= res.lower[0, 2:] - 1e-5)
        assert not res.empty[0]
    for k in range(2):  # intermediate intervals hold on the feasible samples too
        h = np.maximum(z0[feasible], 0.0)
        z = z0[feasible] if k == 0 else h @ net.W[1].T + net.b[1]
        assert np.all(z >= res.pre[k][0][0] - 1e-9) and np.all(z <= res.pre[k][1][0] + 1e-9)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("mode", ["input", "relu"])
def test_bab_answers_are_sound_on_random_nets(seed: int, mode: str) -> None:
    rng = np.random.default_rng(seed)
    model = _net(seed)
    box = Box(-np.ones(3), np.ones(3))
    xs = rng.uniform(-1, 1, (20000, 3)).astype(np.float32)
    ys = model(xs).numpy()[:, 0]
    # thresholds around the sampled maximum: some provable, some violated
    for thr in (float(ys.max()) + 0.5, float(ys.max()) - 0.05):
        cond = OutputBounds(upper=np.array([thr, 1e6])).condition
        r = branch_and_bound(model, box, cond, timeout=10, mode=mode, seed=seed)
        if r.status == "proven":
            assert ys.max() <= thr
        elif r.status == "falsified":
            x = r.counterexample.input
            assert np.all(x >= -1) and np.all(x <= 1)
            assert model(x[None].astype(np.float32)).numpy()[0, 0] > thr
            assert r.counterexample.output64[0] > thr
        if thr < ys.max():
            assert r.status != "proven"


def test_bab_is_deterministic_given_a_seed() -> None:
    model = _net(7, width=16)
    xs = np.random.default_rng(0).uniform(-1, 1, (5000, 3)).astype(np.float32)
    cond = OutputBounds(upper=np.array([float(model(xs).numpy()[:, 0].max()) + 0.05, 1e6])).condition
    box = Box(-np.ones(3), np.ones(3))
    a = branch_and_bound(model, box, cond, timeout=None, seed=3, max_domains=400)
    b = branch_and_bound(model, box, cond, timeout=None, seed=3, max_domains=400)
    assert (a.status, a.domains, a.verified_fraction) == (b.status, b.domains, b.verified_fraction)


@pytest.mark.parametrize("mode", ["input", "relu"])
def test_budget_and_anytime_results(mode: str) -> None:
    model = _net(2, n_in=4, width=64, depth=4)
    xs = np.random.default_rng(0).uniform(-1, 1, (20000, 4)).astype(np.float32)
    top = float(model(xs).numpy()[:, 0].max())
    cond = OutputBounds(upper=np.array([top + 0.02, 1e6])).condition
    box = Box(-np.ones(4), np.ones(4))
    r = branch_and_bound(model, box, cond, timeout=None, seed=0, mode=mode, max_domains=2)
    assert r.status == "unknown" and not r.timed_out and 0.0 <= r.verified_fraction < 1.0
    t = time.perf_counter()
    r = branch_and_bound(model, box, cond, timeout=0.2, seed=0, mode=mode)
    assert time.perf_counter() - t < 2.0
    if r.status == "unknown":
        assert r.timed_out and 0.0 <= r.verified_fraction <= 1.0
    assert r.status != "falsified" or model(r.counterexample.input[None].astype(np.float32)).numpy()[0, 0] > top


def test_bad_input_is_rejected() -> None:
    from axiom.verify import L2Ball

    model = _net(0)
    cond = OutputBounds(upper=1.0).condition
    with pytest.raises(ValueError, match="mode"):
        branch_and_bound(model, Box(-np.ones(3), np.ones(3)), cond, mode="bogus")
    with pytest.raises(ValueError, match="Dense/ReLU chain"):
        branch_and_bound(model, L2Ball(np.zeros(3), 1.0), cond)
    with pytest.raises(ValueError, match="Dense/ReLU chain"):
        branch_and_bound(Sequential(Dense(3, 4, "tanh"), Dense(4, 2)), Box(-np.ones(3), np.ones(3)), cond)


def test_verify_uses_bab_when_bounds_are_not_enough() -> None:
    model = _net(5, width=16)
    xs = np.random.default_rng(0).uniform(-1, 1, (20000, 3)).astype(np.float32)
    top = float(model(xs).numpy()[:, 0].max())
    prop = OutputBounds(upper=np.array([top + 0.02, 1e6]), over=Box(-np.ones(3), np.ones(3)))
    r = verify(model, properties=[prop], timeout=20)
    res = r.results[0]
    assert res.status in ("proven", "falsified")
    if res.status == "proven":
        assert res.method.startswith("bab") or res.method in ("ibp", "crown", "alpha-crown")


FAST = [
    ("acasxu/ACASXU_run2a_1_9_batch_2000.onnx", "acasxu/prop_1.vnnlib", "unsat"),
    ("acasxu/ACASXU_run2a_1_6_batch_2000.onnx", "acasxu/prop_4.vnnlib", "unsat"),
    ("acasxu/ACASXU_run2a_1_7_batch_2000.onnx", "acasxu/prop_3.vnnlib", "sat"),
    ("acasxu/ACASXU_run2a_1_2_batch_2000.onnx", "acasxu/prop_2.vnnlib", "sat"),
    ("test/test_sat.onnx", "test/test_prop.vnnlib", "sat"),
    ("test/test_unsat.onnx", "test/test_prop.vnnlib", "unsat"),
]


@pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is not available")
@pytest.mark.parametrize(("onnx", "spec", "expected"), FAST)
def test_fast_benchmark_instances(onnx: str, spec: str, expected: str) -> None:
    from axiom.verify.instances import verify_instance

    out = verify_instance(BENCH / onnx, BENCH / spec, timeout=30)
    assert out.answer == expected


def test_queue_cap_stops_with_unknown() -> None:
    from axiom.verify.bab._search import input_split

    model = _net(2, n_in=4, width=64, depth=4)
    net = relu_chain(model, (4,))
    xs = np.random.default_rng(0).uniform(-1, 1, (20000, 4)).astype(np.float32)
    top = float(model(xs).numpy()[:, 0].max())
    clause = (np.array([[-1.0, 0.0]]), np.array([-(top + 0.02)]))  # y0 >= top + 0.02 is unsafe
    out = input_split(net, -np.ones(4), np.ones(4), [clause], None, 0, batch=8, max_queue=16)
    assert out.status == "unknown" and out.stats["reason"] == "queue cap" and out.max_queue > 16


def test_box_union_pieces_are_all_searched() -> None:
    from axiom.verify import BoxUnion

    model = _net(3)
    union = BoxUnion([Box(-np.ones(3), np.zeros(3)), Box(np.zeros(3), np.ones(3))])
    xs = np.random.default_rng(1).uniform(-1, 1, (20000, 3)).astype(np.float32)
    top = float(model(xs).numpy()[:, 0].max())
    ok = branch_and_bound(model, union, OutputBounds(upper=[top + 1.0, 1e6]).condition, timeout=10)
    bad = branch_and_bound(model, union, OutputBounds(upper=[top - 0.01, 1e6]).condition, timeout=10)
    assert ok.status == "proven" and ok.verified_fraction == 1.0
    assert bad.status == "falsified" and union.contains(bad.counterexample.input)


@pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is not available")
def test_hard_instance_times_out_on_time() -> None:
    from axiom.verify.instances import verify_instance

    t = time.perf_counter()
    out = verify_instance(
        BENCH / "acasxu/ACASXU_run2a_1_4_batch_2000.onnx", BENCH / "acasxu/prop_1.vnnlib", timeout=1.5
    )
    assert out.answer in ("timeout", "unsat") and time.perf_counter() - t < 4.0


@pytest.mark.parametrize("seed", range(5))
def test_lp_margins_never_exceed_the_true_minimum_over_the_split_polytope(seed: int) -> None:
    from axiom.verify.bab._lp import lp_margins, split_constraints

    rng = np.random.default_rng(seed)
    model = _net(seed, width=8, depth=2)
    net = relu_chain(model, (3,))
    lo, hi = _boxes(rng, 1, 3)
    C = np.array([[1.0, -1.0], [-1.0, 0.0]])
    root = spec_bounds(net, lo, hi, C)
    splits = [np.zeros((1, 8), np.int8) for _ in range(2)]
    for k in range(2):  # split every unstable neuron of both layers, in random directions
        L, Ub = root.pre[k]
        unst = np.flatnonzero((L[0] < 0) & (Ub[0] > 0))
        splits[k][0, unst] = rng.choice([-1, 1], unst.size)
    bb = spec_bounds(net, lo, hi, C, splits, root.pre)
    g_A, g_c = split_constraints(net, lo, hi, splits, bb.pre)
    d = np.zeros(2)
    for owner, nc in ((np.array([0, 0]), 1), (np.array([0, 1]), 2)):  # one conjunction; two clauses
        m, *_ = lp_margins(bb.A_in, bb.const - d, owner, nc, g_A, g_c, lo, hi)
        xs = rng.uniform(lo[0], hi[0], (50000, 3))
        h, feasible = xs, np.ones(len(xs), bool)
        for k in range(2):
            z = h @ net.W[k].T + net.b[k]
            feasible &= np.all(np.where(splits[k][0] > 0, z >= 0, True) & np.where(splits[k][0] < 0, z <= 0, True), 1)
            h = np.maximum(z, 0.0)
        y = (h @ net.W[2].T + net.b[2]) @ C.T
        if feasible.any():
            for k in range(nc):
                true_min = np.min(np.max(y[feasible][:, owner == k], axis=1))
                assert m[0, k] <= true_min + 1e-9
        elif np.isfinite(m[0, 0]):
            assert m[0, 0] > -1e-6 or m[0, 0] == -np.inf


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("branching", ["auto", "smart", "widest", "lookahead"])
def test_every_input_branching_rule_is_sound(seed: int, branching: str) -> None:
    rng = np.random.default_rng(seed)
    model = _net(seed + 20, width=10)
    xs = rng.uniform(-1, 1, (20000, 3)).astype(np.float32)
    ys = model(xs).numpy()
    box = Box(-np.ones(3), np.ones(3))
    for thr in (float(ys[:, 0].max()) + 0.05, float(ys[:, 0].max()) - 0.05):
        cond = OutputBounds(upper=np.array([thr, 1e6])).condition
        r = branch_and_bound(model, box, cond, timeout=10, mode="input", branching=branching, seed=seed)
        assert r.status != "proven" or ys[:, 0].max() <= thr
        if thr < ys[:, 0].max():
            assert r.status == "falsified" and r.counterexample.output64[0] > thr


def test_relu_split_with_lp_proves_a_tight_bound() -> None:
    """A fully split domain needs its split constraints on the input (the LP) to be refuted."""
    from axiom.verify.bab._search import relu_split

    model = _net(5, n_in=2, width=6, depth=2, n_out=1)
    net = relu_chain(model, (2,))
    xs = np.random.default_rng(0).uniform(-1, 1, (200000, 2))
    top = float(np.max(net.forward(xs)[:, 0]))
    clause = (np.array([[-1.0]]), np.array([-(top + 1e-3)]))  # y >= top + 1e-3 is unsafe
    with_lp = relu_split(net, -np.ones(2), np.ones(2), [clause], None, 0, lp=True, max_domains=5000)
    assert with_lp.status == "proven"


@pytest.mark.skipif(not BENCH.is_dir(), reason="../shared/benchmarks is not available")
@pytest.mark.parametrize(
    ("net_id", "prop"), [("1_4", 1), ("1_9", 2)]
)  # unsat; each timed out at 116 s with "smart" branching alone
def test_lookahead_with_relu_splitting_proves_hard_acas_instances(net_id: str, prop: int) -> None:
    from axiom.verify.instances import _network, load_model
    from axiom.verify.vnnlib import read_vnnlib

    model, shape, n_out = _network(load_model(BENCH / f"acasxu/ACASXU_run2a_{net_id}_batch_2000.onnx"))
    (p,) = read_vnnlib(BENCH / f"acasxu/prop_{prop}.vnnlib", input_shape=shape, n_outputs=n_out)
    r = branch_and_bound(model, p.input_set, p.condition, timeout=60, branching="lookahead")
    assert r.status == "proven"


@pytest.mark.parametrize("mode", ["input", "relu"])
def test_recorded_leaves_cover_the_box_and_each_refutes_every_clause(mode: str) -> None:
    """Re-derive every leaf's bound from its box, splits and multipliers (what a certificate checker does)."""
    from axiom.verify.bab._lp import lagrangian_lower, split_constraints

    model = _net(4, width=10)
    net = relu_chain(model, (3,))
    xs = np.random.default_rng(0).uniform(-1, 1, (20000, 3)).astype(np.float32)
    thr = float(model(xs).numpy()[:, 0].max()) + 0.05
    cond = OutputBounds(upper=np.array([thr, 1e6])).condition
    r = branch_and_bound(model, Box(-np.ones(3), np.ones(3)), cond, timeout=20, mode=mode, record=True)
    assert r.status == "proven" and r.leaves
    C = np.array([[-1.0, 0.0], [0.0, -1.0]])  # unsafe: y0 >= thr or y1 >= 1e6 (two clauses of one row)
    d = np.array([-thr, -1e6])
    volume = 0.0
    for leaf in r.leaves:
        lo, hi = np.array([leaf["lower"]]), np.array([leaf["upper"]])
        splits = [np.zeros((1, w.shape[0]), np.int8) for w in net.W[:-1]]
        for k, j, sign in leaf["splits"]:
            splits[k][0, j] = sign
        bb = spec_bounds(net, lo, hi, C, splits if leaf["splits"] else None)
        if leaf["empty"]:
            assert bb.empty[0]
            continue
        g_A, g_c = split_constraints(net, lo, hi, splits, bb.pre)
        w, mu = np.array(leaf["weights"]), np.array(leaf["mu"]).reshape(2, -1)
        for k in range(2):  # each clause (here: one row each) is refuted on the leaf
            rows = np.array([k])
            A = np.concatenate([bb.A_in[0, rows], g_A[0]])[None]
            c = np.concatenate([bb.const[0, rows] - d[rows], g_c[0]])[None]
            assert lagrangian_lower(A, c, np.concatenate([w[rows], mu[k]])[None], lo, hi)[0] > 0
        volume += np.prod(hi - lo) if mode == "input" else 0.0
    if mode == "input":
        assert volume == pytest.approx(8.0)
