"""Coq export: the network over Q, the property, and a proof that ``coqc`` checks.

The file has two parts. A fixed **preamble** defines the network semantics over ``Q`` (``dot``,
``relu``, ``layer_eval``, ``net_eval``), boxes (``inbox``), the property (``avoids``: the output
meets no unsafe clause ``C y <= d``), an interval evaluation (``inet``, with ``Qred`` to keep the
numbers small) and a checker ``check_box`` that bisects the widest side of a box until the
interval image avoids the unsafe region; it PROVES in Coq that the checker is sound
(``check_box_sound``: a ``true`` answer implies the property for every point of the box). The
**instance** part lists the weights as exact ``Q`` literals (the exact rationals of the stored
floats), the input box(es) and the unsafe clauses, and proves ``property_holds`` by running the
checker inside Coq (``vm_compute``); ``Print Assumptions`` then shows that nothing is assumed.

Before writing, :func:`export_coq` runs the same checker in Python (exact fractions, same
splitting) and raises ``ValueError`` if it cannot prove the property within ``max_depth``
bisections: the interval checker is incomplete (it may fail on true properties of larger
networks), but never writes a file whose proof it knows will fail.

Supported: chains of Dense, ReLU, Flatten/Reshape/Dropout layers (the rest raises
``UnsupportedLayerError``); input sets Box, LinfBall, BoxUnion; linear output conditions.

Example:
    >>> from axiom import Dense, Sequential, relu
    >>> from axiom.verify import Box, OutputBounds
    >>> net = Sequential(Dense(2, 2, relu), Dense(2, 1))
    >>> text = export_coq(net, OutputBounds(upper=100.0, over=Box(-1, 1, shape=(2,))))
    >>> "Theorem property_holds" in text and "Print Assumptions property_holds." in text
    True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from axiom.proof._rational import RationalProblem, interval_check, rational_problem
from axiom.verify.sets import InputSet

__all__ = ["COQ_PREAMBLE", "CoqCheck", "check_coq", "coq_problem_text", "export_coq"]

COQ_PREAMBLE = """Require Import QArith Qround List Bool Lia.
Require Import Lqa.
Import ListNotations.
Open Scope Q_scope.
Arguments Qred : simpl never.

(* ---- the network over Q ---- *)
Fixpoint dot (w x : list Q) : Q :=
  match w, x with
  | a :: w', v :: x' => a * v + dot w' x'
  | _, _ => 0
  end.

Definition relu (z : Q) : Q := if Qle_bool z 0 then 0 else z.

(* a layer: (apply ReLU?, one (weights, bias) pair per output neuron) *)
Definition layer := (bool * list (list Q * Q))%type.

Definition neuron (r : bool) (wb : list Q * Q) (x : list Q) : Q :=
  let z := dot (fst wb) x + snd wb in if r then relu z else z.

Definition layer_eval (L : layer) (x : list Q) : list Q :=
  map (fun wb => neuron (fst L) wb x) (snd L).

Fixpoint net_eval (N : list layer) (x : list Q) : list Q :=
  match N with
  | nil => x
  | L :: N' => net_eval N' (layer_eval L x)
  end.

(* ---- boxes ---- *)
Fixpoint inbox (b : list (Q * Q)) (x : list Q) : Prop :=
  match b, x with
  | (l, h) :: b', v :: x' => l <= v /\\ v <= h /\\ inbox b' x'
  | nil, nil => True
  | _, _ => False
  end.

(* ---- interval arithmetic ---- *)
Fixpoint idot (w : list Q) (b : list (Q * Q)) : Q * Q :=
  match w, b with
  | a :: w', (l, h) :: b' =>
      let (s, t) := idot w' b' in
      if Qle_bool 0 a then (Qred (a * l + s), Qred (a * h + t))
      else (Qred (a * h + s), Qred (a * l + t))
  | _, _ => (0, 0)
  end.

Definition ineuron (r : bool) (wb : list Q * Q) (b : list (Q * Q)) : Q * Q :=
  let (s, t) := idot (fst wb) b in
  let zl := Qred (s + snd wb) in
  let zh := Qred (t + snd wb) in
  if r then (relu zl, relu zh) else (zl, zh).

Definition ilayer (L : layer) (b : list (Q * Q)) : list (Q * Q) :=
  map (fun wb => ineuron (fst L) wb b) (snd L).

Fixpoint inet (N : list layer) (b : list (Q * Q)) : list (Q * Q) :=
  match N with
  | nil => b
  | L :: N' => inet N' (ilayer L b)
  end.

Ltac qred := repeat match goal with
  | |- context [Qred ?q] => generalize (Qred_correct q); generalize (Qred q); intros ? ?
  end.

Lemma Qle_bool_false : forall x y, Qle_bool x y = false -> y < x.
Proof.
  intros x y H. destruct (Qlt_le_dec y x) as [H1|H1]; auto.
  apply Qle_bool_iff in H1. congruence.
Qed.

Lemma idot_sound : forall w b x, inbox b x ->
  fst (idot w b) <= dot w x /\\ dot w x <= snd (idot w b).
Proof.
  induction w as [|a w IH]; intros b x Hb.
  - destruct b; destruct x; simpl; lra.
  - destruct b as [|[l h] b']; destruct x as [|v x']; simpl in *; try tauto; try lra.
    destruct Hb as [Hl [Hh Hb']].
    specialize (IH b' x' Hb').
    destruct (idot w b') as [s t]. simpl in IH.
    destruct (Qle_bool 0 a) eqn:E; cbn [fst snd]; qred.
    + apply Qle_bool_iff in E.
      assert (l * a <= v * a) by (apply Qmult_le_compat_r; auto).
      assert (v * a <= h * a) by (apply Qmult_le_compat_r; auto).
      split; lra.
    + apply Qle_bool_false in E.
      assert (v * (-a) <= h * (-a)) by (apply Qmult_le_compat_r; lra).
      assert (l * (-a) <= v * (-a)) by (apply Qmult_le_compat_r; lra).
      split; lra.
Qed.

Lemma relu_mono : forall x y, x <= y -> relu x <= relu y.
Proof.
  intros x y H. unfold relu.
  destruct (Qle_bool x 0) eqn:E1; destruct (Qle_bool y 0) eqn:E2;
  try apply Qle_bool_iff in E1; try apply Qle_bool_iff in E2;
  try apply Qle_bool_false in E1; try apply Qle_bool_false in E2; lra.
Qed.

Lemma ineuron_sound : forall r wb b x, inbox b x ->
  fst (ineuron r wb b) <= neuron r wb x /\\ neuron r wb x <= snd (ineuron r wb b).
Proof.
  intros r [w c] b x Hb. unfold ineuron, neuron. cbn [fst snd].
  pose proof (idot_sound w b x Hb) as H.
  destruct (idot w b) as [s t]. cbn [fst snd] in *.
  destruct r; cbn [fst snd]; qred.
  - split; apply relu_mono; lra.
  - lra.
Qed.

Lemma ilayer_sound : forall L b x, inbox b x -> inbox (ilayer L b) (layer_eval L x).
Proof.
  intros [r rows] b x Hb. unfold ilayer, layer_eval. simpl.
  induction rows as [|wb rows IH]; simpl; auto.
  pose proof (ineuron_sound r wb b x Hb) as H.
  destruct (ineuron r wb b) as [l h]. simpl in *. tauto.
Qed.

Lemma inet_sound : forall N b x, inbox b x -> inbox (inet N b) (net_eval N x).
Proof.
  induction N as [|L N IH]; intros b x Hb; simpl; auto.
  apply IH. apply ilayer_sound. exact Hb.
Qed.

(* ---- the property: the output avoids every unsafe clause (a conjunction of c . y <= d) ---- *)
Definition clause := list (list Q * Q).

Definition avoids (unsafe : list clause) (y : list Q) : Prop :=
  Forall (fun cl => Exists (fun cd => snd cd < dot (fst cd) y) cl) unsafe.

Definition Qltb (x y : Q) : bool := negb (Qle_bool y x).

Definition check_out (unsafe : list clause) (yb : list (Q * Q)) : bool :=
  forallb (fun cl => existsb (fun cd => Qltb (snd cd) (fst (idot (fst cd) yb))) cl) unsafe.

Lemma Qltb_true : forall x y, Qltb x y = true -> x < y.
Proof.
  unfold Qltb. intros x y H. apply negb_true_iff in H. apply Qle_bool_false. exact H.
Qed.

Lemma check_out_sound : forall unsafe yb y, inbox yb y -> check_out unsafe yb = true -> avoids unsafe y.
Proof.
  intros unsafe yb y Hy Hc. unfold check_out in Hc. unfold avoids.
  apply Forall_forall. intros cl Hin.
  rewrite forallb_forall in Hc. specialize (Hc cl Hin).
  apply existsb_exists in Hc. destruct Hc as [cd [Hcd Hlt]].
  apply Exists_exists. exists cd. split; auto.
  apply Qltb_true in Hlt. pose proof (idot_sound (fst cd) yb y Hy) as [H1 _]. lra.
Qed.

(* ---- splitting the input box ---- *)
Fixpoint set_hi (b : list (Q * Q)) (i : nat) (m : Q) : list (Q * Q) :=
  match b, i with
  | (l, h) :: b', O => (l, m) :: b'
  | p :: b', S i' => p :: set_hi b' i' m
  | nil, _ => nil
  end.

Fixpoint set_lo (b : list (Q * Q)) (i : nat) (m : Q) : list (Q * Q) :=
  match b, i with
  | (l, h) :: b', O => (m, h) :: b'
  | p :: b', S i' => p :: set_lo b' i' m
  | nil, _ => nil
  end.

Lemma split_cover : forall b i m x, inbox b x -> inbox (set_hi b i m) x \\/ inbox (set_lo b i m) x.
Proof.
  induction b as [|[l h] b IH]; intros i m x Hb; destruct x as [|v x]; simpl in *; try tauto.
  destruct Hb as [Hl [Hh Hb]]. destruct i as [|i].
  - simpl. destruct (Qlt_le_dec m v); [right | left]; repeat split; auto; lra.
  - simpl. destruct (IH i m x Hb); [left | right]; tauto.
Qed.

Fixpoint widest (b : list (Q * Q)) (i best : nat) (bw : Q) : nat :=
  match b with
  | nil => best
  | (l, h) :: b' => if Qltb bw (h - l) then widest b' (S i) i (h - l) else widest b' (S i) best bw
  end.

Definition mid (b : list (Q * Q)) (i : nat) : Q :=
  let (l, h) := nth i b (0, 0) in Qred ((l + h) / 2).

Fixpoint check_box (fuel : nat) (N : list layer) (unsafe : list clause) (b : list (Q * Q)) : bool :=
  if check_out unsafe (inet N b) then true
  else match fuel with
       | O => false
       | S f =>
           let i := widest b O O (-1) in
           let m := mid b i in
           check_box f N unsafe (set_hi b i m) && check_box f N unsafe (set_lo b i m)
       end.

Theorem check_box_sound : forall fuel N unsafe b x,
  check_box fuel N unsafe b = true -> inbox b x -> avoids unsafe (net_eval N x).
Proof.
  induction fuel as [|f IH]; intros N unsafe b x Hc Hb; simpl in Hc.
  - destruct (check_out unsafe (inet N b)) eqn:E; try discriminate.
    eapply check_out_sound; eauto. apply inet_sound; auto.
  - destruct (check_out unsafe (inet N b)) eqn:E.
    + eapply check_out_sound; eauto. apply inet_sound; auto.
    + apply andb_true_iff in Hc. destruct Hc as [H1 H2].
      destruct (split_cover b (widest b O O (-1)) (mid b (widest b O O (-1))) x Hb) as [Hx|Hx];
        [eapply IH; [exact H1|exact Hx] | eapply IH; [exact H2|exact Hx]].
Qed.
"""

HEADER = """\
(* Axiom proof export: Coq (tested with Coq 8.16), {what}.

   Theorem property_holds: for every input x in the input set (a union of boxes over Q), the
   output of the network over Q avoids the unsafe region (the negation of the property).

   Machine-checked by coqc: the soundness of the interval checker (check_box_sound, proved once
   in the preamble below from the definitions of the network, the boxes and the property) and
   this instance (the checker, run by vm_compute on the listed weights, box and clauses, answers
   true). "Print Assumptions property_holds" at the end must print "Closed under the global
   context" (no axioms).

   Not machine-checked: that the Q network below is the deployed model. The weights and biases
   are the exact rationals of the stored float values; the network is evaluated in exact
   rational arithmetic. Floating-point rounding of deployed inference (float32 sums, fused
   multiply-adds, kernel order) is not covered, nor is the ONNX/PyTorch import that produced
   the weights, nor the translation of the property object into the clauses below (review them).
*)
"""


def _q(v: Fraction) -> str:
    return f"({v.numerator}#{v.denominator})"


def _vec(vs: Any) -> str:
    return "[" + "; ".join(_q(v) for v in vs) + "]"


def coq_problem_text(problem: RationalProblem, fuel: int) -> str:
    """The instance part of a Coq file (definitions and theorems) for a rational problem.

    Example:
        >>> one = Fraction(1)
        >>> from axiom.proof._rational import RationalLayer
        >>> p = RationalProblem([RationalLayer([[one]], [Fraction(1, 2)])], [([-one], [one])], [[([one], -one)]])
        >>> print(coq_problem_text(p, 0).splitlines()[1])
          [ (false, [ ([(1#1)], (1#2)) ]) ].
    """
    layers = []
    for layer in problem.layers:
        rows = "; ".join(f"({_vec(w)}, {_q(b)})" for w, b in zip(layer.weights, layer.biases))
        layers.append(f"({'true' if layer.relu else 'false'}, [ {rows} ])")
    boxes = []
    for lo, hi in problem.boxes:
        boxes.append("[" + "; ".join(f"({_q(a)}, {_q(b)})" for a, b in zip(lo, hi)) + "]")
    clauses = []
    for clause in problem.unsafe:
        clauses.append("[" + "; ".join(f"({_vec(c)}, {_q(d)})" for c, d in clause) + "]")
    sep = ";\n    "
    return f"""Definition net : list layer :=
  [ {sep.join(layers)} ].

(* the input set: the union of these boxes, one (lower, upper) pair per input *)
Definition boxes : list (list (Q * Q)) :=
  [ {sep.join(boxes)} ].

(* the unsafe region: a disjunction of clauses, each a conjunction of atoms (c, d) = (c . y <= d) *)
Definition unsafe : list clause :=
  [ {sep.join(clauses)} ].

Definition in_input_set (x : list Q) : Prop := exists b, In b boxes /\\ inbox b x.

Definition fuel : nat := {int(fuel)}%nat.

Lemma checker_ok : forallb (check_box fuel net unsafe) boxes = true.
Proof. vm_compute. reflexivity. Qed.

Theorem property_holds : forall x, in_input_set x -> avoids unsafe (net_eval net x).
Proof.
  intros x [b [Hin Hx]]. pose proof checker_ok as H. rewrite forallb_forall in H.
  exact (check_box_sound fuel net unsafe b x (H b Hin) Hx).
Qed.

Print Assumptions property_holds.
"""


def export_coq(
    model: Any,
    prop_or_condition: Any,
    input_set: InputSet | None = None,
    path: str | os.PathLike[str] | None = None,
    *,
    max_depth: int = 12,
    name: str = "network",
) -> str:
    """Write (if ``path``) and return a Coq file proving the property for ``model`` over Q.

    Raises:
        ValueError: the interval checker cannot prove the property within ``max_depth``
            bisections per box (the property may be false, or need a finer split).
        UnsupportedLayerError: a layer other than Dense, ReLU, Flatten/Reshape, Dropout.

    Example:
        >>> from axiom import Dense
        >>> from axiom.verify import Box, OutputBounds
        >>> net = Dense(1, 1)
        >>> net.weight.data[:] = 2.0; net.bias.data[:] = 0.0
        >>> text = export_coq(net, OutputBounds(upper=2.5, over=Box(0, 1, shape=(1,))))
        >>> "[ (false, [ ([(2#1)], (0#1)) ]) ]" in text
        True
    """
    problem = rational_problem(model, prop_or_condition, input_set)
    fuel = interval_check(problem, max_depth)
    if fuel is None:
        raise ValueError(
            f"the interval checker cannot prove the property within {max_depth} bisections per box "
            "(it may be false; verify it first, or raise max_depth); no Coq file written"
        )
    n_relu = sum(len(layer.biases) for layer in problem.layers if layer.relu)
    what = (
        f"{name}: {len(problem.layers)} affine layers, {n_relu} ReLU neurons, {problem.n_inputs} inputs, "
        f"{problem.n_outputs} outputs, {len(problem.boxes)} input box(es), checker fuel {fuel}"
    )
    text = HEADER.format(what=what) + "\n" + COQ_PREAMBLE + "\n(* ---- the instance ---- *)\n\n"
    text += coq_problem_text(problem, fuel)
    if path is not None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    return text


@dataclass
class CoqCheck:
    """The outcome of running ``coqc`` on a file.

    ``ok``: coqc accepted the file AND ``Print Assumptions`` reported no axioms (``closed``).

    Example:
        >>> CoqCheck(True, 0, "Closed under the global context", True, 1.0).ok
        True
    """

    ok: bool
    returncode: int | None
    output: str
    closed: bool
    time_s: float


def check_coq(path: str | os.PathLike[str], *, timeout: float = 300.0, coqc: str | None = None) -> CoqCheck:
    """Compile ``path`` with ``coqc`` (in a scratch directory) and report whether it was accepted.

    Raises:
        FileNotFoundError: ``coqc`` is not installed (Debian: ``apt-get install coq``).

    Example:
        >>> import shutil
        >>> shutil.which("coqc") is None or check_coq.__name__ == "check_coq"
        True
    """
    exe = coqc or shutil.which("coqc")
    if exe is None:
        raise FileNotFoundError("coqc was not found (Debian: apt-get install coq)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "AxiomProof.v")
        shutil.copyfile(path, src)
        try:
            proc = subprocess.run(
                [exe, "-q", src], cwd=tmp, capture_output=True, text=True, timeout=timeout, start_new_session=True
            )
        except subprocess.TimeoutExpired as err:
            out = (err.stdout or b"").decode() if isinstance(err.stdout, bytes) else (err.stdout or "")
            return CoqCheck(False, None, out + f"\ncoqc timed out after {timeout} s", False, time.perf_counter() - t0)
    output = proc.stdout + proc.stderr
    closed = "Closed under the global context" in proc.stdout
    return CoqCheck(proc.returncode == 0 and closed, proc.returncode, output, closed, time.perf_counter() - t0)
