"""model.grounding: the query gate, the frame targets read from the answers, the loss, and the model
with it (forward, generate, recipe checks)."""

import math

import pytest
import torch
from torch.nn import functional as F

from vtgcore import build_model, load_recipe
from vtgcore.errors import RecipeError, ShapeError
from vtgcore_plugins.grounding.query_gate import QueryGate, grounding_loss, window_targets

T = 8
MR = [{"q": "When does the red circle move up?", "a": "<time>1.5</time> - <time>4.5</time> seconds."}]
DVC = [{"q": "List the events.", "a": "<time>0</time> - <time>3</time> seconds, a red circle. "
                                      "<time>4.5</time> - <time>9</time> seconds, a blue cross."}]


@pytest.fixture
def grounded(tiny_recipe_path):
    return build_model(load_recipe(tiny_recipe_path, ["model.grounding.name=query_gate"]))


def frames_and_times(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, T, 3, 32, 32, generator=g), torch.arange(T).float().mul(1.5).expand(b, T).clone()


def test_gate_matches_a_hand_computation_and_pools_only_masked_tokens():
    torch.manual_seed(0)
    gate = QueryGate(dim=3, text_dim=4, hidden=2)
    tokens, text = torch.randn(1, 2, 2, 3), torch.randn(1, 5, 4)
    mask = torch.tensor([[True, False, True, True, False]])
    out, logits = gate(tokens, text, mask)
    query = text[0, [0, 2, 3]].mean(0)
    q = gate.text_proj(F.layer_norm(query, (4,), gate.text_norm.weight, gate.text_norm.bias))
    expected = tokens + gate.out(F.gelu(gate.token_proj(tokens)) * q)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(logits, gate.frame_head(expected.mean(2)).squeeze(-1))
    assert out.shape == (1, 2, 2, 3) and logits.shape == (1, 2)
    changed = text.clone()
    changed[0, [1, 4]] = 100.0  # masked tokens do not count
    torch.testing.assert_close(gate(tokens, changed, mask)[0], out)
    with pytest.raises(ShapeError, match="grounding needs"):
        gate(tokens[0], text, mask)


def test_gate_learns_to_bind_a_query_to_matching_frames():
    """Frames show one of 4 colours; the query names one; the frame scorer must find the frames of
    the named colour. A query-blind scorer cannot beat 75 % (1 frame in 4 matches)."""
    torch.manual_seed(0)
    colours, dim, vocab = 4, 8, 6
    proto = torch.randn(colours, dim)
    gate = QueryGate(dim=dim, text_dim=16, hidden=16)
    words = torch.nn.Embedding(vocab, 16)
    opt = torch.optim.Adam([*gate.parameters(), *words.parameters()], lr=1e-2)

    def batch(n=64):
        shown = torch.randint(0, colours, (n, T))
        asked = torch.randint(0, colours, (n,))
        tokens = (proto[shown] + 0.3 * torch.randn(n, T, dim)).unsqueeze(2)  # (n, T, 1, dim)
        ids = torch.stack([torch.full((n,), colours), asked, torch.full((n,), colours + 1)], 1)  # "when <c> ?"
        return tokens, ids, (shown == asked[:, None]).float()

    for _ in range(300):
        tokens, ids, target = batch()
        _, logits = gate(tokens, words(ids), torch.ones_like(ids, dtype=torch.bool))
        loss = F.binary_cross_entropy_with_logits(logits, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    tokens, ids, target = batch(512)
    with torch.no_grad():
        _, logits = gate(tokens, words(ids), torch.ones_like(ids, dtype=torch.bool))
    accuracy = ((logits > 0).float() == target).float().mean().item()
    assert accuracy > 0.95, accuracy


def test_window_targets_read_one_window_answers_only(grounded):
    model, proc = grounded
    ts = torch.arange(T).float().mul(1.5).expand(3, T)
    batch = proc([MR, DVC, [{"q": "Hello?", "a": "No times here."}]], ts.tolist())
    targets, valid = window_targets(batch["labels"], ts, model.time_codec, model.tokenizer)
    assert valid.tolist() == [True, False, False]
    # frames at 0, 1.5, 3, 4.5, 6, ...: inside [1.5, 4.5] are 1.5, 3 and 4.5
    assert targets[0].tolist() == [0, 1, 1, 1, 0, 0, 0, 0]
    assert targets[1:].sum() == 0


def test_grounding_loss_is_the_mean_bce_over_real_frames_of_valid_rows():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, 0.3, 0.3]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    frame_mask = torch.tensor([[True, True, False], [True, True, True]])

    def bce(x, y):
        return -(y * math.log(1 / (1 + math.exp(-x))) + (1 - y) * math.log(1 - 1 / (1 + math.exp(-x))))

    loss = grounding_loss(logits, targets, torch.tensor([True, False]), frame_mask)
    assert loss.item() == pytest.approx((bce(2.0, 1) + bce(-1.0, 0)) / 2, rel=1e-6)
    none = grounding_loss(logits, targets, torch.tensor([False, False]))
    assert none.item() == 0.0
    none.backward()  # still part of the graph (DDP needs every parameter used)
    assert logits.grad is not None


def test_model_with_grounding_adds_the_loss_and_depends_on_the_query(grounded):
    model, proc = grounded
    frames, ts = frames_and_times()
    batch = proc([MR, DVC], ts.tolist())
    out = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert set(out.aux_losses) == {"grounding"}
    torch.testing.assert_close(out.loss, out.lm_loss + out.aux_losses["grounding"])
    out.loss.backward()
    assert all(p.grad is not None for p in model.grounding.parameters())
    # the video tokens depend on the question, and not on the answer
    other = [{"q": "When does the blue cross shrink?", "a": MR[0]["a"]}]
    same_q = [{"q": MR[0]["q"], "a": "<time>7</time> - <time>9</time> seconds."}]
    with torch.no_grad():
        def tokens(qa):
            b = proc([qa], ts[:1].tolist())
            prompt = model.prompt_text(b["input_ids"], b["attention_mask"], b["labels"])
            return model.encode_video(frames[:1], ts[:1], prompt=prompt)

        base = tokens(MR)
        assert not torch.allclose(tokens(other).tokens, base.tokens)
        torch.testing.assert_close(tokens(same_q).tokens, base.tokens)
        assert base.frame_logits.shape == (1, T)
    with pytest.raises(ShapeError, match="needs the prompt"):
        model.encode_video(frames, ts)
    prompt = proc([[{"q": MR[0]["q"]}], [{"q": "When?"}]], ts.tolist(), add_generation_prompt=True)
    ids = model.generate(frames, ts, prompt["input_ids"], prompt["attention_mask"], max_new_tokens=4)
    assert ids.shape[0] == 2


def test_model_without_grounding_is_unchanged(tiny):
    model, proc = tiny
    assert model.grounding is not None and not model.grounding.needs_prompt
    assert list(model.grounding.parameters()) == []
    frames, ts = frames_and_times()
    batch = proc([MR, DVC], ts.tolist())
    out = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"])
    assert out.aux_losses == {} and model.encode_video(frames, ts).frame_logits is None


@pytest.mark.parametrize("override", ["model.grounding.params.hidden=0", "model.grounding.params.loss_weight=-1",
                                      "model.grounding.params.loss_weight=nan"])
def test_bad_grounding_settings_are_recipe_errors(tiny_recipe_path, override):
    with pytest.raises(RecipeError, match="query_gate needs hidden >= 1 and loss_weight >= 0"):
        load_recipe(tiny_recipe_path, ["model.grounding.name=query_gate", override])


@pytest.mark.parametrize("legacy, name, params", [
    (["model.grounding.enabled=true"], "query_gate", {}),
    (["model.grounding.enabled=true", "model.grounding.hidden=8", "model.grounding.loss_weight=2.0"], "query_gate",
     {"hidden": 8, "loss_weight": 2.0}),
    (["model.grounding.enabled=false", "model.grounding.hidden=8"], "none", {}),
])
def test_recipes_of_older_runs_are_upgraded_to_the_plugin_form(tiny_recipe_path, legacy, name, params):
    """Run folders written before grounding became a plugin kind hold ``{enabled, hidden, loss_weight}``."""
    recipe = load_recipe(tiny_recipe_path, legacy)
    assert recipe.model.grounding.name == name
    assert dict(recipe.model.grounding.params) == params


def test_model_py_knows_no_grounding_technique_by_name():
    import vtgcore.model as M

    source = open(M.__file__).read()
    assert "QueryGate" not in source and "grounding_loss" not in source and "window_targets" not in source
