"""The ``axiom`` command line and the instance runner behind it (with a fake ``verify`` where
noted, so these tests pin the CLI's own behaviour), plus end-to-end runs of ``python -m axiom``."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import axiom
import axiom.verify.api
from axiom.cli import build_parser, main
from axiom.verify import instances as inst_mod
from axiom.verify.instances import (
    EXIT_CODES,
    Instance,
    Outcome,
    Progress,
    filter_instances,
    is_wrong,
    read_instances,
    summarize,
    verify_instance,
)
from axiom.verify.result import PropertyResult, VerificationResult
from axiom.verify.vnnlib import format_counterexample, read_vnnlib

REPO = Path(__file__).resolve().parents[1]
BENCH = Path("/work/shared/benchmarks")
TEST = BENCH / "test"
needs_bench = pytest.mark.skipif(not TEST.is_dir(), reason="shared benchmarks not available")

SAT_NET, UNSAT_NET, PROP = TEST / "test_sat.onnx", TEST / "test_unsat.onnx", TEST / "test_prop.vnnlib"


class FakeVerify:
    """Stands in for ``axiom.verify.verify``: answers per network file name, records its calls."""

    def __init__(self, answers: dict[str, str] | None = None, *, ce: np.ndarray | None = None, timed_out=False):
        self.answers = answers or {}
        self.ce = ce
        self.timed_out = timed_out
        self.calls: list[dict] = []

    def __call__(self, model, properties, timeout=None, method="auto", **kw):
        self.calls.append({"model": model, "properties": properties, "timeout": timeout, "method": method, **kw})
        status = self.answers.get(Path(str(model)).name, "proven")
        if status == "raise":
            raise RuntimeError("boom")
        results = []
        for p in properties:
            ce = None
            if status == "falsified":
                ce = self.ce if self.ce is not None else p.input_set.to_box().center.astype(np.float32)
            results.append(
                PropertyResult(
                    p,
                    "formal",
                    status,
                    method="fake",
                    counterexample=ce,
                    output=None if ce is None else np.zeros(5, np.float32),
                    timed_out=self.timed_out,
                    message="" if status != "unknown" else "bounds too loose",
                )
            )
        return VerificationResult("formal", results, runtime_s=0.01)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch):
    """Install a FakeVerify and a model loader that returns the path (and counts loads)."""
    loads: list[str] = []

    def load_model(path):
        loads.append(str(path))
        return Path(path)

    monkeypatch.setattr(inst_mod, "load_model", load_model)

    def install(**kw) -> FakeVerify:
        fv = FakeVerify(**kw)
        fv.loads = loads
        monkeypatch.setattr(axiom.verify.api, "verify", fv)
        return fv

    return install


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def expected_ce_text(net: Path, x: np.ndarray) -> str:
    sess = ort.InferenceSession(str(net), providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    y = sess.run(None, {inp.name: x.astype(np.float32).reshape(inp.shape)})[0]
    lines = [f"(X_{i} {float(v)!r})" for i, v in enumerate(x.astype(np.float32).ravel())]
    lines += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(np.ravel(y))]
    return "sat\n(" + "\n ".join(lines) + ")\n"


# ----------------------------------------------------------------------------------------------
# Parsing and usage errors
# ----------------------------------------------------------------------------------------------


def test_parser_single_and_instances_modes() -> None:
    a = build_parser().parse_args(["verify", "n.onnx", "s.vnnlib", "--timeout", "2.5", "--method", "crown", "--json"])
    assert (a.onnx, a.vnnlib, a.timeout, a.method, a.json, a.instances) == (
        "n.onnx",
        "s.vnnlib",
        2.5,
        "crown",
        True,
        None,
    )
    b = build_parser().parse_args(
        ["verify", "--instances", "i.csv", "--root", "r", "--timeout-scale", "0.5", "--limit", "3", "--filter", "ac"]
    )
    assert (b.instances, b.root, b.timeout_scale, b.limit, b.filter, b.onnx) == ("i.csv", "r", 0.5, 3, "ac", None)


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "required"),
        (["verify"], "needs NET.onnx and SPEC.vnnlib"),
        (["verify", "n.onnx"], "needs NET.onnx and SPEC.vnnlib"),
        (["verify", "n.onnx", "s.vnnlib", "--limit", "2"], "--limit only applies with --instances"),
        (["verify", "n.onnx", "s.vnnlib", "--timeout-scale", "2"], "--timeout-scale only applies"),
        (["verify", "n.onnx", "--instances", "i.csv"], "not both"),
        (["verify", "n.onnx", "s.vnnlib", "--timeout", "-1"], "must be > 0"),
        (["verify", "n.onnx", "s.vnnlib", "--timeout", "abc"], "not a number"),
        (["verify", "n.onnx", "s.vnnlib", "--method", "magic"], "invalid choice"),
        (["verify", "a", "b", "c"], "unrecognized arguments"),
        (["frobnicate"], "invalid choice"),
        (["verify", "n.onnx", "s.vnnlib", "--workers", "2"], "--workers only applies with --instances"),
        (["verify", "n.onnx", "s.vnnlib", "--dask-scheduler", "tcp://h:1"], "--dask-scheduler only applies"),
        (["verify", "--instances", "i.csv", "--workers", "0"], "must be >= 1"),
        (["verify", "--instances", "i.csv", "--workers", "two"], "not an integer"),
        (["verify", "--instances", "i.csv", "--workers", "2", "--dask-scheduler", "tcp://h:1"], "not both"),
    ],
)
def test_usage_errors_exit_2(capsys, argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_version_and_help(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"axiom {axiom.__version__}"
    with pytest.raises(SystemExit) as e:
        main(["verify", "--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0
    for word, code in EXIT_CODES.items():
        assert f"{word}" in out and f"exit code {code}" in out
    assert "examples:" in out and "axiom verify --instances" in out


def test_console_script_declared() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["scripts"]["axiom"] == "axiom.cli:main"


# ----------------------------------------------------------------------------------------------
# One instance with a fake verify
# ----------------------------------------------------------------------------------------------


@needs_bench
def test_unsat(capsys, fake) -> None:
    fv = fake()
    code, out, err = run_cli(capsys, "verify", UNSAT_NET, PROP, "--timeout", "7", "--method", "alpha-crown")
    assert (code, out) == (0, "unsat\n")
    assert "unsat" in err and "proven" in err
    [call] = fv.calls
    assert call["timeout"] == 7.0 and call["method"] == "alpha-crown"
    assert len(call["properties"]) == 1 and call["properties"][0].input_set.lower.size == 5


@needs_bench
def test_method_defaults_to_verify_default(capsys, fake) -> None:
    fv = fake()
    run_cli(capsys, "verify", UNSAT_NET, PROP)
    assert fv.calls[0]["method"] == "auto" and fv.calls[0]["timeout"] is None


@needs_bench
def test_sat_prints_counterexample_exactly(capsys, fake, tmp_path: Path) -> None:
    x = np.array([-0.3, 0.0, 0.496, 0.4, 0.4], np.float32)
    fake(answers={"test_sat.onnx": "falsified"}, ce=x)
    out_file = tmp_path / "result.txt"
    code, out, err = run_cli(capsys, "verify", SAT_NET, PROP, "--out", out_file)
    assert code == 10
    assert out == expected_ce_text(SAT_NET, x)
    assert out.splitlines()[0] == "sat" and out.splitlines()[1].startswith("((X_0 -0.30000001192092896)")
    assert out_file.read_text() == out


@needs_bench
def test_sat_counterexample_cast_to_float32_stays_in_the_box(capsys, fake) -> None:
    [p] = read_vnnlib(PROP)
    x = p.input_set.upper.copy()  # float64 corner: plain float32 rounding may leave the box
    fake(answers={"test_sat.onnx": "falsified"}, ce=x)
    code, out, _ = run_cli(capsys, "verify", SAT_NET, PROP)
    assert code == 10
    xs = np.array([float(line.split()[1].rstrip(")")) for line in out.splitlines()[1:6]])
    assert p.input_set.contains(xs)
    assert np.array_equal(xs.astype(np.float32).astype(np.float64), xs)


@needs_bench
def test_unconfirmed_counterexample_is_unknown(capsys, fake) -> None:
    fake(answers={"test_unsat.onnx": "falsified"})  # the unsat net has no violation
    code, out, err = run_cli(capsys, "verify", UNSAT_NET, PROP)
    assert (code, out) == (20, "unknown\n")
    assert "not confirmed" in err and "unsafe region" in err
    fake(answers={"test_sat.onnx": "falsified"}, ce=np.full(5, 9.0, np.float32))  # outside the box
    code, out, err = run_cli(capsys, "verify", SAT_NET, PROP)
    assert (code, out) == (20, "unknown\n") and "not in the input set" in err


@needs_bench
@pytest.mark.parametrize(
    "answers, timed_out, word",
    [({"test_unsat.onnx": "unknown"}, False, "unknown"), ({"test_unsat.onnx": "unknown"}, True, "timeout")],
)
def test_unknown_and_timeout(capsys, fake, answers, timed_out, word) -> None:
    fake(answers=answers, timed_out=timed_out)
    code, out, err = run_cli(capsys, "verify", UNSAT_NET, PROP, "--timeout", "1")
    assert (code, out) == (EXIT_CODES[word], f"{word}\n")
    assert "bounds too loose" in err


@needs_bench
def test_errors(capsys, fake, tmp_path: Path) -> None:
    fake(answers={"test_unsat.onnx": "raise"})
    code, out, err = run_cli(capsys, "verify", UNSAT_NET, PROP)
    assert (code, out) == (1, "error\n") and "RuntimeError: boom" in err
    bad = tmp_path / "bad.vnnlib"
    bad.write_text("(declare-const X_0 Real)\n(assert (<= X_0 1)")
    code, out, err = run_cli(capsys, "verify", UNSAT_NET, bad)
    assert (code, out) == (1, "error\n") and "bad.vnnlib:2:1" in err
    code, out, err = run_cli(capsys, "verify", UNSAT_NET, PROP, "--out", tmp_path / "no" / "such" / "dir.txt")
    assert code == 1 and "cannot write" in err


@needs_bench
def test_json(capsys, fake) -> None:
    x = np.array([-0.3, 0.0, 0.496, 0.4, 0.4], np.float32)
    fake(answers={"test_sat.onnx": "falsified"}, ce=x)
    code, out, _ = run_cli(capsys, "verify", SAT_NET, PROP, "--json")
    d = json.loads(out)
    assert code == 10 and d["result"] == "sat" and d["status"] == "falsified"
    assert d["counterexample"]["x"] == [float(v) for v in x] and len(d["counterexample"]["y"]) == 5
    assert d["properties"][0]["method"] == "fake" and d["onnx"] == str(SAT_NET)
    fake()
    code, out, _ = run_cli(capsys, "verify", UNSAT_NET, PROP, "--json")
    assert code == 0 and json.loads(out)["result"] == "unsat" and json.loads(out)["counterexample"] is None


def test_outcome_text_and_exit_codes() -> None:
    assert Outcome("unsat", 1.0).text() == "unsat"
    o = Outcome("sat", 1.0, np.array([1.0, -0.5], np.float32), np.array([2.0]))
    assert (
        o.text() == "sat\n" + format_counterexample([1.0, -0.5], [2.0]) == "sat\n((X_0 1.0)\n (X_1 -0.5)\n (Y_0 2.0))"
    )
    assert [Outcome(a, 0.0).exit_code for a in ("unsat", "sat", "unknown", "timeout", "error")] == [0, 10, 20, 30, 1]
    assert len(set(EXIT_CODES.values()) | {2}) == 6


def test_verify_instance_never_raises(tmp_path: Path) -> None:
    o = verify_instance(tmp_path / "nope.onnx", tmp_path / "nope.vnnlib")
    assert o.answer == "error" and o.message


# ----------------------------------------------------------------------------------------------
# Instances
# ----------------------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[list[str]], header: bool = True) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        if header:
            w.writerow(["benchmark", "onnx", "vnnlib", "timeout_s", "expected"])
        w.writerows(rows)
    return path


def test_read_instances_formats(tmp_path: Path) -> None:
    p = tmp_path / "a.csv"
    p.write_text(
        "# comment\nbenchmark,onnx,vnnlib,timeout_s,expected\n\n"
        "b1,n/x.onnx,s/p.vnnlib,60,holds\nb2,y.onnx,q.vnnlib,1.5,\n"
    )
    rows = read_instances(p)
    assert [(i.benchmark, i.onnx, i.vnnlib, i.timeout_s, i.expected, i.row) for i in rows] == [
        ("b1", tmp_path / "n/x.onnx", tmp_path / "s/p.vnnlib", 60.0, "unsat", 4),
        ("b2", tmp_path / "y.onnx", tmp_path / "q.vnnlib", 1.5, "unknown", 5),
    ]
    q = tmp_path / "b.csv"
    q.write_text("nets/x.onnx,p.vnnlib,116\nb,x.onnx,p.vnnlib,3,sat\n")
    rows = read_instances(q, root="/r")
    assert [(i.benchmark, str(i.onnx), i.expected) for i in rows] == [
        ("nets", "/r/nets/x.onnx", "unknown"),
        ("b", "/r/x.onnx", "sat"),
    ]
    bad = tmp_path / "c.csv"
    bad.write_text("x.onnx,p.vnnlib,3,maybe,extra,col\n")
    with pytest.raises(ValueError, match=r"c\.csv:1: expected 3 or 5 columns"):
        read_instances(bad)
    bad.write_text("b,x.onnx,p.vnnlib,3,perhaps\n")
    with pytest.raises(ValueError, match="expected must be sat, unsat or unknown"):
        read_instances(bad)


def test_filter_wrong_and_summary() -> None:
    rows = [
        Instance("acasxu", Path("a/n1.onnx"), Path("a/prop_1.vnnlib"), 10.0, "unsat", 2),
        Instance("acasxu", Path("a/n2.onnx"), Path("a/prop_2.vnnlib"), 10.0, "sat", 3),
        Instance("mnist", Path("m/n.onnx"), Path("m/p.vnnlib"), 10.0, "unknown", 4),
    ]
    assert [i.row for i in filter_instances(rows, "prop_2")] == [3]
    assert [i.row for i in filter_instances(rows, "acasxu", limit=1)] == [2]
    assert [i.row for i in filter_instances(rows, "^mnist/")] == [4]
    assert is_wrong("sat", "unsat") and is_wrong("unsat", "sat")
    assert not any(is_wrong(e, a) for e in ("sat", "unsat", "unknown") for a in ("unknown", "timeout", "error"))
    assert not is_wrong("unknown", "sat")
    res = [
        (rows[0], Outcome("unsat", 1.0)),
        (rows[1], Outcome("unsat", 2.0)),
        (rows[2], Outcome("sat", 0.5)),
    ]
    text = summarize(res)
    lines = text.splitlines()
    assert lines[0].split() == [
        "benchmark",
        "n",
        "unsat",
        "sat",
        "unknown",
        "timeout",
        "error",
        "correct",
        "wrong",
        "time_s",
    ]
    assert lines[1].split() == ["acasxu", "2", "2", "0", "0", "0", "0", "1", "1", "3.00"]
    assert lines[2].split() == ["mnist", "1", "0", "1", "0", "0", "0", "0", "0", "0.50"]
    assert lines[3].split() == ["TOTAL", "3", "2", "1", "0", "0", "0", "1", "1", "3.50"]
    assert "1 WRONG ANSWER(S)" in text and "row 3: acasxu: n2.onnx prop_2.vnnlib: expected sat, got unsat" in text


def test_progress_tty_and_plain() -> None:
    plain = Progress(2, io.StringIO())
    plain.start("x")
    plain.update("x", "unsat", 0.1)
    assert plain.stream.getvalue() == "[1/2] x -> unsat (0.10 s)\n"

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    bar = Progress(2, Tty(), width=4)
    bar.start("a")
    bar.update("a", "sat", 0.1)
    bar.update("b", "unsat", 0.1)
    text = bar.stream.getvalue()
    assert text.count("\r") == 3 and "[##..] 1/2 a -> sat" in text and "[####] 2/2 b -> unsat" in text
    assert text.endswith("\n")


@needs_bench
def test_instances_runner(capsys, fake, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "instances.csv",
        [
            ["test", "test/test_unsat.onnx", "test/test_prop.vnnlib", "60", "unsat"],
            ["test", "test/test_sat.onnx", "test/test_prop.vnnlib", "60", "sat"],
            ["test", "test/test_small.onnx", "test/test_small.vnnlib", "60", "unsat"],
            ["other", "test/test_nano.onnx", "test/test_nano.vnnlib", "30", "sat"],  # fake says proven: WRONG
            ["other", "test/test_tiny.onnx", "test/test_tiny.vnnlib", "10", "unknown"],
            ["other", "test/test_sat.onnx", "test/test_prop.vnnlib", "60", "sat"],
        ],
    )
    fv = fake(answers={"test_sat.onnx": "falsified", "test_tiny.onnx": "raise"})
    results = tmp_path / "results.csv"
    code, out, err = run_cli(
        capsys, "verify", "--instances", csv_path, "--root", BENCH, "--timeout-scale", "0.5", "--out", results
    )
    assert code == 1  # one wrong answer
    assert [c["timeout"] for c in fv.calls] == [30.0, 30.0, 30.0, 15.0, 5.0, 30.0]
    assert len(fv.loads) == 5 and len(set(fv.loads)) == 5  # test_sat.onnx imported once for two rows
    assert err.count("\n") >= 6 and "[4/6] other: test_nano.onnx test_nano.vnnlib -> unsat (WRONG)" in err
    lines = out.splitlines()
    assert lines[1].split()[:9] == ["test", "3", "2", "1", "0", "0", "0", "3", "0"]
    assert lines[2].split()[:9] == ["other", "3", "1", "1", "0", "0", "1", "1", "1"]
    assert "WRONG ANSWER" in out and "expected sat, got unsat" in out
    with open(results) as f:
        rows = list(csv.DictReader(f))
    assert [r["result"] for r in rows] == ["unsat", "sat", "unsat", "unsat", "error", "sat"]
    assert [r["wrong"] for r in rows] == ["0", "0", "0", "1", "0", "0"]
    assert "RuntimeError: boom" in rows[4]["message"]


@needs_bench
def test_instances_filter_limit_json_and_exit_0(capsys, fake, tmp_path: Path) -> None:
    csv_path = _write_csv(
        tmp_path / "i.csv",
        [
            [b, f"{BENCH}/test/{n}.onnx", f"{BENCH}/test/{s}.vnnlib", "60", e]
            for b, n, s, e in [
                ("test", "test_unsat", "test_prop", "unsat"),
                ("test", "test_small", "test_small", "unsat"),
                ("acasxu", "test_sat", "test_prop", "sat"),
            ]
        ],
    )
    fake(answers={"test_sat.onnx": "falsified"})
    code, out, err = run_cli(capsys, "verify", "--instances", csv_path, "--filter", "test_(unsat|sat)", "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["benchmark"], r["result"]) for r in rows] == [("test", "unsat"), ("acasxu", "sat")]
    assert rows[1]["counterexample"]["x"] and "no wrong answers (2 of 2" in err
    code, out, _ = run_cli(capsys, "verify", "--instances", csv_path, "--limit", "1")
    assert code == 0 and out.splitlines()[-2].split()[:2] == ["TOTAL", "1"]
    code, _, err = run_cli(capsys, "verify", "--instances", tmp_path / "missing.csv")
    assert code == 1 and "missing.csv" in err


# ----------------------------------------------------------------------------------------------
# End to end: real from_onnx + verify in a subprocess
# ----------------------------------------------------------------------------------------------


def _run_module(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "axiom", *argv], capture_output=True, text=True, cwd=REPO, timeout=timeout
    )


@needs_bench
def test_end_to_end_test_small_unsat() -> None:
    r = _run_module("verify", str(TEST / "test_small.onnx"), str(TEST / "test_small.vnnlib"), "--timeout", "60")
    assert (r.returncode, r.stdout) == (0, "unsat\n"), r.stderr


@needs_bench
def test_end_to_end_sat_counterexample_checks_out(tmp_path: Path) -> None:
    out = tmp_path / "r.txt"
    r = _run_module("verify", str(SAT_NET), str(PROP), "--timeout", "60", "--out", str(out))
    assert r.returncode == 10 and r.stdout.startswith("sat\n(("), r.stderr
    assert out.read_text() == r.stdout
    x = np.array([float(v.split()[1].rstrip(")")) for v in r.stdout.splitlines()[1:6]])
    assert r.stdout == expected_ce_text(SAT_NET, x)
    [p] = read_vnnlib(PROP)
    sess = ort.InferenceSession(str(SAT_NET), providers=["CPUExecutionProvider"])
    y = sess.run(None, {"input": x.astype(np.float32).reshape(1, 1, 1, 5)})[0]
    assert p.input_set.contains(x) and not p.holds(y.reshape(1, -1))[0]


@needs_bench
def test_end_to_end_instances_test_set(tmp_path: Path) -> None:
    out = tmp_path / "results.csv"
    r = _run_module("verify", "--instances", str(BENCH / "instances.csv"), "--filter", "^test/", "--out", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[1].split()[:9] == ["test", "5", "4", "1", "0", "0", "0", "5", "0"], r.stdout
    assert "no wrong answers (5 of 5" in r.stdout and r.stderr.count("[") >= 5
    with open(out) as f:
        assert [row["result"] for row in csv.DictReader(f)] == ["unsat", "unsat", "unsat", "sat", "unsat"]


# ----------------------------------------------------------------------------------------------
# Scale-out: --workers and --dask-scheduler (more in tests/verify/test_scaleout.py)
# ----------------------------------------------------------------------------------------------


def test_parser_scale_out_options(capsys) -> None:
    a = build_parser().parse_args(["verify", "--instances", "i.csv", "--workers", "3"])
    assert (a.workers, a.dask_scheduler) == (3, None)
    b = build_parser().parse_args(["verify", "--instances", "i.csv", "--dask-scheduler", "tcp://127.0.0.1:8786"])
    assert (b.workers, b.dask_scheduler) == (None, "tcp://127.0.0.1:8786")
    with pytest.raises(SystemExit):
        main(["verify", "--help"])
    out = capsys.readouterr().out
    assert "--workers N" in out and "--dask-scheduler ADDRESS" in out and "Ctrl-C" in out


@needs_bench
def test_end_to_end_instances_workers_match_sequential(tmp_path: Path) -> None:
    def results(*extra: str) -> list[list[str]]:
        out = tmp_path / f"results{len(extra)}.csv"
        r = _run_module(
            "verify", "--instances", str(BENCH / "instances.csv"), "--filter", "^test/", "--out", str(out), *extra
        )
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines()[1].split()[:9] == ["test", "5", "4", "1", "0", "0", "0", "5", "0"], r.stdout
        with open(out) as f:
            return [row[:6] for row in csv.reader(f)]

    assert results("--workers", "2") == results()


@needs_bench
def test_end_to_end_ctrl_c_stops_workers(tmp_path: Path) -> None:
    import os
    import signal
    import time

    if not (BENCH / "verivital").is_dir():
        pytest.skip("verivital benchmark not available")
    proc = subprocess.Popen(
        [sys.executable, "-m", "axiom", "verify", "--instances", str(BENCH / "instances.csv")]
        + ["--filter", "verivital", "--workers", "2", "--out", str(tmp_path / "r.csv")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, which gets the SIGINT as from a terminal
    )
    time.sleep(3.0)
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and not (tmp_path / "r.csv").exists()
    for _ in range(50):  # the workers are killed and reaped; multiprocessing's helper exits on EOF
        ps = subprocess.run(["ps", "-eo", "pid=,sid=,stat="], capture_output=True, text=True).stdout.split()
        rows = zip(ps[::3], ps[1::3], ps[2::3])
        left = [pid for pid, sid, stat in rows if sid == str(proc.pid) and not stat.startswith("Z")]
        if not left:
            break
        time.sleep(0.1)
    assert not left, f"processes of the run still alive: {left}"
