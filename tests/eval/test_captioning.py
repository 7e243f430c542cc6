"""Real CIDEr / METEOR / PTB tokenizer through pycocoevalcap and Java (skipped without them).

One METEOR JVM is shared by the whole module (it takes several seconds to load its paraphrase
table), so the file stays well under 30 s.
"""

from __future__ import annotations

import pytest

from vtgcore.data.formats import EvalItem
from vtgcore.errors import VTGError
from vtgcore.eval import captioning
from vtgcore.eval.metrics import dvc_metrics

needs_backend = pytest.mark.skipif(captioning.caption_backend_problem() is not None,
                                   reason=f"caption back end: {captioning.caption_backend_problem()}")


@pytest.fixture(scope="module")
def scorer():
    if captioning.caption_backend_problem() is not None:
        pytest.skip(captioning.caption_backend_problem())
    with captioning.CocoCaptionScorer() as coco:
        yield coco


@needs_backend
def test_ptb_tokenizer_lowercases_and_drops_punctuation(scorer):
    out = scorer.tokenize(["A man, cuts the Onion.", "", "sent2..", "He said \"hi\"; then left...",
                           "multi\nline", "a\u2028b\r\nc", "naïve café"])
    assert out == ["a man cuts the onion", "", "sent2", "he said hi then left", "multi line", "a b c", "naïve café"]


@needs_backend
def test_meteor_identical_beats_unrelated(scorer):
    pairs = [("a man cuts an onion", "a man cuts an onion"),
             ("pour the oil into the pan", "the dog runs on the beach")]
    aggregate, each = scorer.meteor(pairs)
    assert len(each) == 2
    assert each[0] > 0.9
    assert each[1] < each[0]
    assert 0.0 < aggregate < 1.0
    # "|||" would break METEOR's line protocol: it is removed, not sent
    assert scorer.meteor([("cut ||| the onion", "cut the onion")])[1][0] > 0.9


@needs_backend
def test_one_meteor_process_per_scorer(scorer):
    scorer.meteor([("a b c", "a b c")])
    first = scorer._meteor
    scorer.meteor([("d e f", "d e f")])
    assert scorer._meteor is first


@needs_backend
def test_cider_identical_beats_unrelated(scorer):
    # CIDEr's IDF comes from the pairs: with one pair every n-gram has df = 1 = corpus size, so the
    # score is 0; three pairs make a corpus.
    same = [("cut the onion", "cut the onion"), ("boil the water", "boil the water"),
            ("add salt and pepper", "add salt and pepper")]
    unrelated = [("cut the onion", "dogs run"), ("boil the water", "red car"),  # no shared word
                 ("add salt and pepper", "she sings loudly")]
    assert scorer.cider(same) > 1.0
    assert scorer.cider(unrelated) == 0.0
    assert scorer.cider([("cut the onion", "cut the onion")]) == 0.0
    assert scorer.cider([]) == 0.0


@needs_backend
def test_dvc_metrics_real_backend_sanity(scorer):
    gts = [EvalItem(id="v1", video="v1.mp4", task="dvc", duration=60.0, windows=[(0, 10), (10, 20), (20, 30)],
                    captions=["cut the onion.", "fry the onion in oil.", "add salt and pepper."]),
           EvalItem(id="v2", video="v2.mp4", task="dvc", duration=60.0, windows=[(0, 30)],
                    captions=["boil the water."])]
    perfect = {"v1": [(0, 10, "cut the onion."), (10, 20, "fry the onion in oil."), (20, 30, "add salt and pepper.")],
               "v2": [(0, 30, "boil the water.")]}
    wrong = {"v1": [(0, 10, "a dog runs"), (10, 20, "the car is red"), (20, 30, "she sings")],
             "v2": [(0, 30, "birds fly")]}
    good = dvc_metrics(perfect, gts, scorer=scorer)
    bad = dvc_metrics(wrong, gts, scorer=scorer)
    assert good["F1"] == pytest.approx(100.0, rel=1e-6)
    assert good["METEOR"] > 90 and good["CIDEr"] > 0 and good["SODA_c"] > 90
    assert bad["METEOR"] < good["METEOR"] and bad["CIDEr"] < good["CIDEr"] and bad["SODA_c"] < good["SODA_c"]
    assert "unavailable" not in good


def test_scorer_refuses_to_start_without_java(monkeypatch):
    monkeypatch.setattr(captioning, "java_available", lambda: False)
    with pytest.raises(VTGError, match="needs Java"):
        captioning.CocoCaptionScorer()
