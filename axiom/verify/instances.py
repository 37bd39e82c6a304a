"""Running VNN-COMP style instances: one ONNX network + one VNN-LIB spec -> ``sat``/``unsat``/...

This is the logic behind ``axiom verify`` (the CLI only parses arguments and prints):

- :func:`verify_instance` imports the network (``axiom.io.from_onnx``), reads the spec
  (:func:`~axiom.verify.vnnlib.read_vnnlib`), runs :func:`axiom.verify.verify` and maps its
  verdict to the competition's words: ``proven`` -> ``unsat`` (the property holds),
  ``falsified`` -> ``sat`` (violated, with a counterexample), ``unknown``, ``timeout`` (the time
  budget ran out) and ``error`` (an exception). A ``sat`` answer is only given when onnxruntime,
  running the ONNX file itself on the counterexample cast to the network's input dtype,
  reproduces an output in the unsafe region (no tolerance); otherwise the answer is ``unknown``.
- :func:`read_instances`, :func:`run_instances`, :func:`summarize` and :func:`write_results_csv`
  run a whole ``instances.csv`` (``benchmark,onnx,vnnlib,timeout_s,expected`` with a header, or
  the competition's header-less ``onnx,vnnlib,timeout``) and score it against ``expected``.

Example:
    >>> from axiom.verify.instances import EXIT_CODES, Outcome
    >>> o = Outcome("sat", 0.5, counterexample=np.array([0.25]), output=np.array([-2.0]))
    >>> print(o.text())
    sat
    ((X_0 0.25)
     (Y_0 -2.0))
    >>> EXIT_CODES[o.answer], is_wrong("unsat", o.answer)
    (10, True)
"""

from __future__ import annotations

import csv
import re
import sys
import time
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from axiom.verify.vnnlib import format_counterexample, read_vnnlib

__all__ = [
    "ANSWERS",
    "EXIT_CODES",
    "Instance",
    "InstanceCache",
    "Outcome",
    "Progress",
    "confirm_counterexample",
    "filter_instances",
    "is_wrong",
    "read_instances",
    "run_instances",
    "summarize",
    "verify_instance",
    "write_results_csv",
]

ANSWERS = ("unsat", "sat", "unknown", "timeout", "error")
EXIT_CODES = {"unsat": 0, "sat": 10, "unknown": 20, "timeout": 30, "error": 1}
"""Exit code of ``axiom verify NET SPEC`` per answer (2 is a usage error, as for argparse)."""
STATUS_TO_ANSWER = {"proven": "unsat", "falsified": "sat", "unknown": "unknown"}


# ----------------------------------------------------------------------------------------------
# Loading (replaceable in tests)
# ----------------------------------------------------------------------------------------------


def load_model(path: str | Path) -> Any:
    """The network of an ONNX file as an axiom model (``axiom.io.from_onnx``)."""
    from axiom.io import from_onnx

    return from_onnx(str(path))


def run_verify(model: Any, properties: list[Any], timeout: float | None, method: str | None) -> Any:
    """``axiom.verify.verify(model, properties=..., timeout=..., method=...)``."""
    from axiom.verify.api import verify

    kwargs: dict[str, Any] = {"timeout": timeout}
    if method is not None:
        kwargs["method"] = method
    return verify(model, properties=properties, **kwargs)


def _network(loaded: Any) -> tuple[Any, tuple[int, ...] | None, int | None]:
    """(model to verify, input shape of one example, number of outputs), shapes None where unknown.

    An imported ``OnnxModel`` gives its ``Sequential`` (``.model``) and its ONNX shapes (batch
    axis removed); any other model is asked through ``axiom.verify.concrete``.
    """
    if hasattr(loaded, "onnx_model") and hasattr(loaded, "model"):
        n_out = int(np.prod(loaded.output_shape)) if getattr(loaded, "output_shape", None) is not None else None
        return loaded.model, tuple(int(d) for d in loaded.input_shape), n_out
    from axiom.verify.concrete import model_input_shape, model_output_size

    try:
        shape = model_input_shape(loaded)
    except Exception:  # noqa: BLE001 - a model that does not state its shape: read the spec flat
        return loaded, None, None
    try:
        return loaded, shape, model_output_size(loaded)
    except Exception:  # noqa: BLE001
        return loaded, shape, None


class InstanceCache:
    """Imported models, onnxruntime sessions and parsed specs, shared across instances.

    Example:
        >>> cache = InstanceCache()
        >>> len(cache.models), len(cache.sessions), len(cache.specs)
        (0, 0, 0)
    """

    def __init__(self) -> None:
        self.models: dict[str, Any] = {}
        self.sessions: dict[str, Any] = {}
        self.specs: dict[tuple[str, Any, Any], list[Any]] = {}

    def model(self, path: str | Path) -> Any:
        key = str(Path(path).resolve())
        if key not in self.models:
            self.models[key] = load_model(path)
        return self.models[key]

    def session(self, path: str | Path) -> Any:
        key = str(Path(path).resolve())
        if key not in self.sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            self.sessions[key] = ort.InferenceSession(key, opts, providers=["CPUExecutionProvider"])
        return self.sessions[key]

    def properties(self, path: str | Path, input_shape: Any, n_outputs: Any) -> list[Any]:
        key = (str(Path(path).resolve()), input_shape, n_outputs)
        if key not in self.specs:
            self.specs[key] = read_vnnlib(Path(path), input_shape=input_shape, n_outputs=n_outputs)
        return self.specs[key]


# ----------------------------------------------------------------------------------------------
# One instance
# ----------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """The answer to one instance.

    ``answer`` is one of :data:`ANSWERS`; for ``sat``, ``counterexample`` and ``output`` are the
    flattened input (as fed to onnxruntime) and the network's output there. ``status`` is
    ``verify()``'s own verdict (None if it did not return), ``properties`` one dict per property
    (``status``, ``method``, ``message``).

    Example:
        >>> o = Outcome("timeout", 60.2, message="budget exhausted")
        >>> o.text(), o.exit_code, o.to_dict()["result"]
        ('timeout', 30, 'timeout')
    """

    answer: str
    runtime_s: float
    counterexample: np.ndarray | None = None
    output: np.ndarray | None = None
    message: str = ""
    status: str | None = None
    properties: list[dict[str, Any]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.answer]

    def text(self) -> str:
        """The VNN-COMP result text: the answer word, then the counterexample for ``sat``."""
        if self.answer == "sat" and self.counterexample is not None and self.output is not None:
            return f"sat\n{format_counterexample(self.counterexample, self.output)}"
        return self.answer

    def to_dict(self) -> dict[str, Any]:
        return {
            "result": self.answer,
            "status": self.status,
            "runtime_s": self.runtime_s,
            "message": self.message,
            "counterexample": None
            if self.counterexample is None
            else {"x": [float(v) for v in self.counterexample], "y": [float(v) for v in np.ravel(self.output)]},
            "properties": self.properties,
        }


def _ort_io(session: Any) -> tuple[str, list[int], np.dtype]:
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ValueError(f"the network has {len(inputs)} inputs; VNN-LIB 1.0 describes exactly one")
    inp = inputs[0]
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
    types = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}
    if inp.type not in types:
        raise ValueError(f"unsupported network input type {inp.type}")
    return inp.name, shape, np.dtype(types[inp.type])


def _cast_into(x: np.ndarray, lower: np.ndarray, upper: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``x`` cast to ``dtype``, components that the rounding pushed out of the box nudged back in."""
    xc = x.astype(dtype)
    lo, hi = lower.ravel(), upper.ravel()
    for _ in range(4):
        below, above = xc.astype(np.float64) < lo, xc.astype(np.float64) > hi
        if not (below.any() or above.any()):
            break
        xc = np.where(below, np.nextafter(xc, dtype.type(np.inf)), xc)
        xc = np.where(above, np.nextafter(xc, dtype.type(-np.inf)), xc)
    return xc


def confirm_counterexample(session: Any, prop: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | str:
    """Replay ``x`` through the ONNX network with onnxruntime and check it against ``prop``.

    Returns ``(x_as_fed, y)`` (both flattened) when ``x`` (cast to the network's input dtype)
    lies in the property's input set and the output lies in one of its unsafe clauses, exactly;
    otherwise a string saying why not.

    Example:
        >>> import onnxruntime as ort
        >>> from onnx import TensorProto, helper
        >>> from axiom.verify.vnnlib import read_vnnlib
        >>> g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
        ...     [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
        ...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1])])
        >>> m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
        >>> sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
        >>> [p] = read_vnnlib("(declare-const X_0 Real)(declare-const Y_0 Real)"
        ...                   "(assert (<= -1 X_0 1))(assert (>= Y_0 0.5))")
        >>> confirm_counterexample(sess, p, np.array([0.75]))
        (array([0.75], dtype=float32), array([0.75]))
        >>> confirm_counterexample(sess, p, np.array([0.25]))
        "onnxruntime's output at the counterexample is not in the unsafe region"
    """
    name, shape, dtype = _ort_io(session)
    x = np.asarray(x, np.float64).ravel()
    if x.size != int(np.prod(shape)):
        return f"counterexample has {x.size} values but the network input {shape} has {int(np.prod(shape))}"
    boxes = prop.input_set.boxes()
    box = next((b for b in boxes if b.contains(x.reshape(b.lower.shape))), boxes[0])
    xc = _cast_into(x, box.lower, box.upper, dtype)
    x64 = xc.astype(np.float64)
    if not any(b.contains(x64.reshape(b.lower.shape)) for b in boxes):
        return f"counterexample cast to {dtype} is not in the input set"
    y = np.asarray(session.run(None, {name: xc.reshape(shape)})[0], np.float64).ravel()
    if not any(bool(c.satisfied(y[None])[0]) for c in prop.condition.clauses):
        return "onnxruntime's output at the counterexample is not in the unsafe region"
    return xc.ravel(), y


def verify_instance(
    onnx_path: str | Path,
    vnnlib_path: str | Path,
    *,
    timeout: float | None = None,
    method: str | None = None,
    cache: InstanceCache | None = None,
) -> Outcome:
    """Verify one instance; never raises (an exception becomes the answer ``error``).

    Example:
        >>> verify_instance("missing.onnx", "missing.vnnlib").answer
        'error'
    """
    t0 = time.perf_counter()
    cache = cache or InstanceCache()
    status = None
    try:
        model, input_shape, n_outputs = _network(cache.model(onnx_path))
        props = cache.properties(vnnlib_path, input_shape, n_outputs)
        result = run_verify(model, props, timeout, method)
        status = result.status
        details = [
            {"status": r.status, "method": getattr(r, "method", None), "message": getattr(r, "message", "")}
            for r in result.results
        ]
        answer = STATUS_TO_ANSWER.get(status)
        if answer is None:
            raise ValueError(f"verify() returned the status {status!r}")
        elapsed = time.perf_counter() - t0
        message = "; ".join(d["message"] for d in details if d["message"])
        if answer == "unknown" and (
            getattr(result, "timed_out", False) or (timeout is not None and elapsed >= timeout)
        ):
            return Outcome("timeout", elapsed, message=message, status=status, properties=details)
        if answer != "sat":
            return Outcome(answer, elapsed, message=message, status=status, properties=details)
        why = "verify() reported a violation without a counterexample"
        for prop, r in zip(props, result.results):
            if r.status != "falsified" or r.counterexample is None:
                continue
            confirmed = confirm_counterexample(cache.session(onnx_path), prop, r.counterexample)
            if not isinstance(confirmed, str):
                x, y = confirmed
                return Outcome("sat", time.perf_counter() - t0, x, y, message, status, details)
            why = confirmed
        return Outcome(
            "unknown",
            time.perf_counter() - t0,
            message=f"verify() said falsified, but the counterexample was not confirmed: {why}",
            status=status,
            properties=details,
        )
    except TimeoutError as err:
        return Outcome("timeout", time.perf_counter() - t0, message=str(err), status=status)
    except Exception as err:  # noqa: BLE001 - the competition's answer for a crash is "error"
        frames = traceback.extract_tb(err.__traceback__)
        where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno} in {frames[-1].name})" if frames else ""
        message = f"{type(err).__name__}: {err}{where}"
        return Outcome("error", time.perf_counter() - t0, message=message, status=status)


# ----------------------------------------------------------------------------------------------
# Many instances
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Instance:
    """One row of an instances CSV (paths resolved; ``row`` is its line in the file).

    Example:
        >>> Instance("acasxu", Path("nets/n1.onnx"), Path("prop_1.vnnlib"), 116.0, "unsat").label
        'acasxu: n1.onnx prop_1.vnnlib'
    """

    benchmark: str
    onnx: Path
    vnnlib: Path
    timeout_s: float
    expected: str = "unknown"
    row: int = 0

    @property
    def label(self) -> str:
        return f"{self.benchmark}: {self.onnx.name} {self.vnnlib.name}"


def read_instances(csv_path: str | Path, root: str | Path | None = None) -> list[Instance]:
    """Rows of ``benchmark,onnx,vnnlib,timeout_s,expected`` (with a header) or ``onnx,vnnlib,timeout``.

    Paths are relative to ``root`` (default: the CSV's folder). ``expected`` defaults to
    ``unknown`` and the benchmark name to the ONNX file's folder.

    Example:
        >>> import tempfile, os
        >>> d = tempfile.mkdtemp()
        >>> _ = open(os.path.join(d, "i.csv"), "w").write("nets/a.onnx,specs/p.vnnlib,60\\n")
        >>> [(i.benchmark, i.onnx.name, i.timeout_s, i.expected) for i in read_instances(os.path.join(d, "i.csv"))]
        [('nets', 'a.onnx', 60.0, 'unknown')]
    """
    csv_path = Path(csv_path)
    base = Path(root) if root is not None else csv_path.parent
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        rows = [
            (reader.line_num, r)
            for r in reader
            if r and any(c.strip() for c in r) and not r[0].lstrip().startswith("#")
        ]
    out: list[Instance] = []
    header = [c.strip().lower() for c in rows[0][1]] if rows else []
    col: dict[str, int] = {}
    if header and "onnx" in header and "vnnlib" in header:
        col = {name: header.index(name) for name in header}
        rows = rows[1:]
    for k, r in rows:
        r = [c.strip() for c in r]
        try:
            if col:
                cells = {name: r[i] for name, i in col.items() if i < len(r)}
                get = cells.get
                onnx, spec = get("onnx"), get("vnnlib")
                timeout = get("timeout_s", get("timeout"))
                benchmark, expected = get("benchmark"), get("expected")
            elif len(r) == 3:
                (onnx, spec, timeout), benchmark, expected = r, None, None
            elif len(r) == 5:
                benchmark, onnx, spec, timeout, expected = r
            else:
                raise ValueError(f"expected 3 or 5 columns, got {len(r)}")
            if not onnx or not spec or timeout is None:
                raise ValueError("missing onnx, vnnlib or timeout column")
            expected = (expected or "unknown").lower()
            expected = {"holds": "unsat", "violated": "sat"}.get(expected, expected)
            if expected not in ("sat", "unsat", "unknown"):
                raise ValueError(f"expected must be sat, unsat or unknown, got {expected!r}")
            onnx_p = base / onnx
            out.append(Instance(benchmark or onnx_p.parent.name, onnx_p, base / spec, float(timeout), expected, k))
        except ValueError as err:
            raise ValueError(f"{csv_path}:{k}: {err}") from err
    return out


def is_wrong(expected: str, answer: str) -> bool:
    """True when a definite answer contradicts a definite expectation (``sat`` vs ``unsat``).

    Example:
        >>> is_wrong("sat", "unsat"), is_wrong("sat", "timeout"), is_wrong("unknown", "sat")
        (True, False, False)
    """
    return {expected, answer} == {"sat", "unsat"}


class Progress:
    """A progress display on a stream: a redrawn bar on a terminal, one plain line per step otherwise.

    Example:
        >>> import io
        >>> p = Progress(2, io.StringIO())
        >>> p.update("acasxu: prop_1", "unsat", 0.5); p.stream.getvalue()
        '[1/2] acasxu: prop_1 -> unsat (0.50 s)\\n'
    """

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 24) -> None:
        self.total, self.done, self.width = total, 0, width
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def start(self, label: str) -> None:
        if self.tty:
            self._bar(f"{label} ...")

    def update(self, label: str, answer: str, seconds: float) -> None:
        self.done += 1
        if self.tty:
            self._bar(f"{label} -> {answer}")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"[{self.done}/{self.total}] {label} -> {answer} ({seconds:.2f} s)\n")
        self.stream.flush()

    def _bar(self, text: str) -> None:
        filled = int(self.width * self.done / max(self.total, 1))
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r\x1b[2K[{bar}] {self.done}/{self.total} {text}"[:200])
        self.stream.flush()


def run_instances(
    instances: Sequence[Instance],
    *,
    timeout_scale: float = 1.0,
    method: str | None = None,
    progress: Progress | None = None,
    cache: InstanceCache | None = None,
) -> list[tuple[Instance, Outcome]]:
    """Verify every instance in order (timeouts scaled by ``timeout_scale``), sharing one cache.

    Example:
        >>> i = Instance("demo", Path("missing.onnx"), Path("missing.vnnlib"), 10.0, "unsat")
        >>> [(inst.benchmark, o.answer) for inst, o in run_instances([i], timeout_scale=0.5)]
        [('demo', 'error')]
    """
    cache = cache or InstanceCache()
    out = []
    for inst in instances:
        if progress is not None:
            progress.start(inst.label)
        outcome = verify_instance(
            inst.onnx, inst.vnnlib, timeout=inst.timeout_s * timeout_scale, method=method, cache=cache
        )
        if progress is not None:
            progress.update(
                inst.label,
                outcome.answer + (" (WRONG)" if is_wrong(inst.expected, outcome.answer) else ""),
                outcome.runtime_s,
            )
        out.append((inst, outcome))
    return out


def filter_instances(
    instances: Iterable[Instance], pattern: str | None = None, limit: int | None = None
) -> list[Instance]:
    """Instances whose ``benchmark/onnx/vnnlib`` path text matches ``pattern`` (re.search), at most ``limit``.

    Example:
        >>> i = [Instance("acasxu", Path("a.onnx"), Path("prop_1.vnnlib"), 1.0)]
        >>> i.append(Instance("test", Path("t.onnx"), Path("t.vnnlib"), 1.0))
        >>> [x.benchmark for x in filter_instances(i, "prop_")], len(filter_instances(i, limit=1))
        (['acasxu'], 1)
    """
    rx = re.compile(pattern) if pattern else None
    chosen = [i for i in instances if rx is None or rx.search(f"{i.benchmark}/{i.onnx}/{i.vnnlib}")]
    return chosen if limit is None else chosen[: max(limit, 0)]


def summarize(results: Sequence[tuple[Instance, Outcome]]) -> str:
    """A table per benchmark (answer counts, correct vs expected, wrong answers, time) and the wrong answers.

    Example:
        >>> i = Instance("test", Path("t.onnx"), Path("t.vnnlib"), 60.0, "unsat")
        >>> print(summarize([(i, Outcome("unsat", 0.25))]))  # doctest: +NORMALIZE_WHITESPACE
        benchmark  n  unsat  sat  unknown  timeout  error  correct  wrong  time_s
        test       1      1    0        0        0      0        1      0    0.25
        TOTAL      1      1    0        0        0      0        1      0    0.25
        no wrong answers (1 of 1 decided instances correct)
    """
    cols = ["benchmark", "n", *ANSWERS, "correct", "wrong", "time_s"]
    table: dict[str, dict[str, float]] = {}
    for inst, o in results:
        for key in (inst.benchmark, "TOTAL"):
            row = table.setdefault(key, {c: 0 for c in cols[1:]})
            row["n"] += 1
            row[o.answer] += 1
            row["correct"] += int(o.answer in ("sat", "unsat") and o.answer == inst.expected)
            row["wrong"] += int(is_wrong(inst.expected, o.answer))
            row["time_s"] += o.runtime_s
    if "TOTAL" in table:
        table["TOTAL"] = table.pop("TOTAL")
    cells = [cols] + [
        [name] + [f"{r[c]:.2f}" if c == "time_s" else str(int(r[c])) for c in cols[1:]] for name, r in table.items()
    ]
    widths = [max(len(row[k]) for row in cells) for k in range(len(cols))]
    lines = [
        "  ".join(c.ljust(w) if k == 0 else c.rjust(w) for k, (c, w) in enumerate(zip(row, widths))) for row in cells
    ]
    wrong = [(i, o) for i, o in results if is_wrong(i.expected, o.answer)]
    decided = sum(1 for i, o in results if o.answer in ("sat", "unsat") and i.expected in ("sat", "unsat"))
    if wrong:
        lines.append("")
        lines.append(f"!!! {len(wrong)} WRONG ANSWER(S): the answer contradicts the expected result !!!")
        for i, o in wrong:
            lines.append(f"!!! row {i.row}: {i.label}: expected {i.expected}, got {o.answer}")
    else:
        lines.append(f"no wrong answers ({decided - len(wrong)} of {decided} decided instances correct)")
    return "\n".join(lines)


def write_results_csv(results: Sequence[tuple[Instance, Outcome]], path: str | Path) -> None:
    """One row per instance: the CSV columns, then ``result, runtime_s, correct, wrong, message``.

    Example:
        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "results.csv")
        >>> i = Instance("demo", Path("n.onnx"), Path("p.vnnlib"), 10.0, "sat")
        >>> write_results_csv([(i, Outcome("sat", 1.5))], path)
        >>> open(path).read().splitlines()[1]
        'demo,n.onnx,p.vnnlib,10.0,sat,sat,1.5000,1,0,'
    """
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "benchmark",
                "onnx",
                "vnnlib",
                "timeout_s",
                "expected",
                "result",
                "runtime_s",
                "correct",
                "wrong",
                "message",
            ]
        )
        for i, o in results:
            correct = o.answer in ("sat", "unsat") and o.answer == i.expected
            w.writerow(
                [
                    i.benchmark,
                    i.onnx,
                    i.vnnlib,
                    i.timeout_s,
                    i.expected,
                    o.answer,
                    f"{o.runtime_s:.4f}",
                    int(correct),
                    int(is_wrong(i.expected, o.answer)),
                    o.message,
                ]
            )
