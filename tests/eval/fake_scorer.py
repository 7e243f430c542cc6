"""A deterministic caption scorer shared by the evaluation tests (no Java needed)."""


class FakeScorer:
    """Deterministic caption back end: captions are their lower-cased text; a pair scores 1 when
    reference == hypothesis, else the table value (METEOR) or 0; counts the calls."""

    def __init__(self, meteor_table=None):
        self.meteor_table = dict(meteor_table or {})
        self.calls = {"tokenize": 0, "cider": 0, "meteor": 0}

    def tokenize(self, texts):
        self.calls["tokenize"] += 1
        return [t.lower().rstrip(".") for t in texts]

    def cider(self, pairs):
        self.calls["cider"] += 1
        return sum(ref == hyp for ref, hyp in pairs) / len(pairs)

    def meteor(self, pairs):
        self.calls["meteor"] += 1
        scores = [1.0 if ref == hyp else self.meteor_table.get((ref, hyp), 0.0) for ref, hyp in pairs]
        return sum(scores) / len(scores), scores
