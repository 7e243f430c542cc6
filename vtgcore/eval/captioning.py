"""Caption scoring for dense video captioning: PTB tokenizer, CIDEr, METEOR (pycocoevalcap) and SODA_c.

The standard YouCook2 evaluator (Vid2Seq/TimeChat ``eval_dvc.py``, used by VTG-LLM; see
``vtgllm-original.md`` section 5.3) tokenizes every caption with the Stanford PTB tokenizer,
scores caption pairs with pycocoevalcap's CIDEr and the METEOR 1.5 jar, and computes SODA_c
(Fujita et al. 2020) from a METEOR score matrix. The tokenizer and METEOR need Java; the jars ship
with the ``pycocoevalcap`` package (requirement ``pycocoevalcap>=1.2``).

Without Java (or without pycocoevalcap) none of CIDEr, METEOR and SODA_c is computed: CIDEr would
need a different tokenizer and its numbers would no longer be comparable with published ones, so
the metric functions report those metrics as unavailable (value ``None`` and a reason) instead.

:class:`CaptionScorer` is the small interface the metric code uses; :class:`CocoCaptionScorer`
implements it with pycocoevalcap and keeps one METEOR subprocess for a whole evaluation. Tests and
other back ends can pass any object with the same three methods.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vtgcore.errors import VTGError

__all__ = [
    "CAPTION_METRICS", "CaptionScorer", "CocoCaptionScorer", "caption_backend_problem", "java_available",
    "order_preserving_max", "soda_c",
]

CAPTION_METRICS: tuple[str, ...] = ("CIDEr", "METEOR", "SODA_c")
"""The dense-captioning metrics that need the caption back end (Java and pycocoevalcap)."""

Pair = tuple[str, str]
"""A ``(reference, hypothesis)`` caption pair."""


def java_available() -> bool:
    """Whether a ``java`` executable is on ``PATH``.

    Follows pycocoevalcap, which starts ``java`` from ``PATH`` for its PTB tokenizer and METEOR.
    """
    return shutil.which("java") is not None


def _pycocoevalcap_dir() -> Path | None:
    """The folder of the installed pycocoevalcap package, or None when it is not installed.

    pycocoevalcap is a namespace package (no ``__init__.py``), so the folder is found from one of
    its modules.
    """
    try:
        from pycocoevalcap.tokenizer import ptbtokenizer
    except ImportError:
        return None
    return Path(ptbtokenizer.__file__).resolve().parent.parent


def caption_backend_problem() -> str | None:
    """Why CIDEr, METEOR and SODA_c cannot be computed here, or None when they can.

    The back end of the standard evaluator (Vid2Seq/TimeChat ``eval_dvc.py``) is pycocoevalcap
    with Java for the PTB tokenizer and METEOR 1.5.

    Returns:
        A one-line reason (``"needs Java (not found on PATH)"`` or a pycocoevalcap install hint),
        or None.
    """
    if not java_available():
        return "needs Java (not found on PATH)"
    if _pycocoevalcap_dir() is None:
        return "needs the pycocoevalcap package (pip install pycocoevalcap)"
    return None


class CaptionScorer(Protocol):
    """What the dense-captioning metric needs from a caption back end.

    Pairs are ``(reference, hypothesis)``, as pycocoevalcap's ``compute_score(gts, res)``.
    """

    def tokenize(self, texts: Sequence[str]) -> list[str]:
        """Tokenized, lower-cased texts without punctuation, one per input text."""

    def cider(self, pairs: Sequence[Pair]) -> float:
        """Corpus CIDEr (a fraction, not percent) of the pairs; the pairs form the IDF corpus."""

    def meteor(self, pairs: Sequence[Pair]) -> tuple[float, list[float]]:
        """Aggregate METEOR of the pairs and the METEOR of each pair (fractions)."""


def _ptb_tokenize(texts: Sequence[str], java: str = "java") -> list[str]:
    """Tokenize with the Stanford PTB tokenizer jar of pycocoevalcap, in one Java call.

    Follows ``pycocoevalcap.tokenizer.ptbtokenizer.PTBTokenizer`` (``-preserveLines -lowerCase``,
    then the same punctuation tokens removed), but writes its temporary file to the system temp
    folder instead of the package folder, turns every whitespace run (line breaks included) into
    one space, and sends only non-blank texts (blank ones give ``""``).
    """
    from pycocoevalcap.tokenizer.ptbtokenizer import PUNCTUATIONS, STANFORD_CORENLP_3_4_1_JAR

    jar = Path(_pycocoevalcap_dir() or ".") / "tokenizer" / STANFORD_CORENLP_3_4_1_JAR
    flat = [" ".join(text.split()) for text in texts]  # one line each, whatever the line breaks
    out = ["" for _ in texts]
    todo = [i for i, text in enumerate(flat) if text]
    if not todo:
        return out
    fd, name = tempfile.mkstemp(prefix="vtg_ptb_", suffix=".txt")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write("\n".join(flat[i] for i in todo))
        cmd = [java, "-cp", str(jar), "edu.stanford.nlp.process.PTBTokenizer", "-preserveLines", "-lowerCase", name]
        done = subprocess.run(cmd, capture_output=True, check=False)
    finally:
        os.remove(name)
    if done.returncode != 0:
        raise VTGError(f"PTB tokenizer (Java) failed with exit code {done.returncode}: "
                       f"{done.stderr.decode(errors='replace').strip()[:200]}")
    lines = done.stdout.decode("utf-8", errors="replace").split("\n")
    if lines and not lines[-1]:
        lines.pop()
    if len(lines) != len(todo):
        raise VTGError(f"PTB tokenizer (Java) returned {len(lines)} lines for {len(todo)} captions")
    punctuation = set(PUNCTUATIONS)
    for i, line in zip(todo, lines):
        out[i] = " ".join(w for w in line.rstrip().split(" ") if w and w not in punctuation)
    return out


def _clean_for_meteor(text: str) -> str:
    """A caption that cannot break METEOR's line protocol (no ``|||``, no line breaks)."""
    return " ".join(text.replace("|||", " ").split())


class CocoCaptionScorer:
    """CIDEr, METEOR and the PTB tokenizer from pycocoevalcap, with one METEOR process.

    Follows the scorers of the Vid2Seq/TimeChat ``eval_dvc.py`` (pycocoevalcap ``Cider`` with
    n=4, sigma=6; METEOR 1.5 ``-l en -norm``; PTB tokenizer). The METEOR JVM starts on the first
    :meth:`meteor` call and lives until :meth:`close` (or the end of a ``with`` block), so one
    evaluation pays its start-up (several seconds, loading the paraphrase table) once.

    Raises:
        VTGError: at construction, when Java or pycocoevalcap is missing.
    """

    def __init__(self) -> None:
        problem = caption_backend_problem()
        if problem is not None:
            raise VTGError(f"caption metrics unavailable: {problem}")
        self._meteor: Any = None

    def __enter__(self) -> CocoCaptionScorer:
        """The scorer itself; leaving the block stops METEOR."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop METEOR (see :meth:`close`)."""
        self.close()

    def tokenize(self, texts: Sequence[str]) -> list[str]:
        """PTB-tokenize ``texts`` in one Java call (see :func:`_ptb_tokenize`)."""
        return _ptb_tokenize(list(texts))

    def cider(self, pairs: Sequence[Pair]) -> float:
        """pycocoevalcap CIDEr over ``pairs`` (one reference each); 0.0 for no pairs."""
        if not pairs:
            return 0.0
        from pycocoevalcap.cider.cider import Cider

        gts = {str(k): [ref] for k, (ref, _) in enumerate(pairs)}
        res = {str(k): [hyp] for k, (_, hyp) in enumerate(pairs)}
        score, _ = Cider().compute_score(gts, res)
        return float(np.nan_to_num(score))

    def meteor(self, pairs: Sequence[Pair]) -> tuple[float, list[float]]:
        """METEOR 1.5 over ``pairs``: the aggregate of the jar's ``EVAL`` line and each pair's score."""
        if not pairs:
            return 0.0, []
        gts = {str(k): [_clean_for_meteor(ref)] for k, (ref, _) in enumerate(pairs)}
        res = {str(k): [_clean_for_meteor(hyp)] for k, (_, hyp) in enumerate(pairs)}
        try:
            score, scores = self._meteor_process().compute_score(gts, res)
        except (ValueError, OSError) as err:
            self.close()
            raise VTGError(f"METEOR (Java) failed: {err}") from None
        return float(np.nan_to_num(score)), [float(np.nan_to_num(s)) for s in scores]

    def _meteor_process(self) -> Any:
        """The pycocoevalcap ``Meteor`` of this scorer, started on first use."""
        if self._meteor is None:
            from pycocoevalcap.meteor.meteor import Meteor

            self._meteor = Meteor()
        return self._meteor

    def close(self) -> None:
        """Stop the METEOR subprocess (if started)."""
        meteor, self._meteor = self._meteor, None
        if meteor is None:
            return
        process = meteor.meteor_p
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
        process.kill()
        process.wait()


def order_preserving_max(scores: np.ndarray) -> float:
    """The largest total score of an order-preserving one-to-one matching of rows to columns.

    Follows SODA's ``chased_dp_assignment`` (Fujita et al. 2020, github.com/fujiso/SODA, copied in
    Vid2Seq's evaluator): ``dp[i, j] = max(dp[i-1, j], dp[i, j-1], dp[i-1, j-1] + s[i, j])``,
    written iteratively (the original recursion overflows Python's stack on long videos).

    Args:
        scores: (G, P) non-negative scores (ground-truth events by predicted events).

    Returns:
        The best total; 0.0 for an empty matrix.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2:
        raise VTGError(f"SODA assignment needs a 2-D score matrix, got shape {scores.shape}")
    rows, cols = scores.shape
    table = np.zeros((rows + 1, cols + 1))
    for i in range(1, rows + 1):
        for j in range(1, cols + 1):
            table[i, j] = max(table[i - 1, j], table[i, j - 1], table[i - 1, j - 1] + scores[i - 1, j - 1])
    return float(table[rows, cols])


def soda_c(ious: np.ndarray, caption_scores: np.ndarray, tiou: float = 0.0) -> float:
    """SODA_c of one video: F-measure of the best order-preserving IoU x METEOR matching.

    Follows ``sodac`` of the Vid2Seq/TimeChat ``eval_dvc.py`` (SODA type "c" with tIoU 0): IoUs
    below ``tiou`` are set to 0, the best matching score ``S`` of ``ious * caption_scores`` gives
    precision ``S / #pred`` and recall ``S / #GT``, and the result is ``2PR / (P + R)`` (0 when
    both are 0).

    Args:
        ious: (G, P) temporal IoUs of ground-truth and predicted events.
        caption_scores: (G, P) caption scores (METEOR in the standard evaluator).
        tiou: IoU threshold.

    Returns:
        SODA_c as a fraction in [0, 1]; 0.0 when there is no prediction.
    """
    ious = np.array(ious, dtype=float)
    caption_scores = np.asarray(caption_scores, dtype=float)
    if ious.shape != caption_scores.shape:
        raise VTGError(f"SODA_c: IoU matrix {ious.shape} and score matrix {caption_scores.shape} differ")
    n_gt, n_pred = ious.shape
    if n_gt == 0 or n_pred == 0:
        return 0.0
    ious[ious < tiou] = 0.0
    best = order_preserving_max(ious * caption_scores)
    precision, recall = best / n_pred, best / n_gt
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
