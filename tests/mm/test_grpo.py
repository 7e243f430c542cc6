"""GRPO (``training.objective: grpo``): the objective's arithmetic against hand computations, the
policy's log-probabilities against generation, a run from an SFT checkpoint with exact resume and
its reference policy in the checkpoint, two gloo processes, and the recipe checks."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.hooks import Hook

from vtgcore.config.loader import load_recipe
from vtgcore.errors import RecipeError

ROOT = Path(__file__).resolve().parents[2]
RECIPE = ROOT / "recipes" / "vtgllm" / "synth_tiny_grpo.yaml"


# -- the arithmetic ---------------------------------------------------------------------------------

def test_group_advantages_by_hand():
    from vtgcore.mm.grpo import ADVANTAGE_EPS, group_advantages

    rewards = torch.tensor([1.0, 0.0, 0.5, 0.5, 0.2, 0.4])  # three groups of two
    adv = group_advantages(rewards, 2)
    std = math.sqrt(0.5)  # unbiased std of (1, 0)
    expected = [0.5 / (std + ADVANTAGE_EPS), -0.5 / (std + ADVANTAGE_EPS), 0.0, 0.0,
                -0.1 / (math.sqrt(0.02) + ADVANTAGE_EPS), 0.1 / (math.sqrt(0.02) + ADVANTAGE_EPS)]
    torch.testing.assert_close(adv, torch.tensor(expected), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(group_advantages(rewards, 2, scale=False),
                               torch.tensor([0.5, -0.5, 0.0, 0.0, -0.1, 0.1]), rtol=0, atol=1e-6)
    torch.testing.assert_close(group_advantages(rewards, 3, scale=False),
                               torch.tensor([0.5, -0.5, 0.0, 0.5 - 1.1 / 3, 0.2 - 1.1 / 3, 0.4 - 1.1 / 3]),
                               rtol=0, atol=1e-6)  # groups (1, 0, 0.5) and (0.5, 0.2, 0.4)


def test_policy_loss_clipping_kl_and_aggregation_by_hand():
    from vtgcore.mm.grpo import policy_loss

    # row 0: advantage +1, ratios 1.5 (clipped to 1.2) and 1.0; row 1: advantage -1, ratio 1.5 (not
    # clipped: -1.5 < -1.2 is the min), one token; the last column is padding
    old = torch.zeros(2, 3)
    logp = torch.log(torch.tensor([[1.5, 1.0, 9.0], [1.5, 9.0, 9.0]]))
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])
    adv = torch.tensor([1.0, -1.0])
    loss, stats = policy_loss(logp, old, adv, mask, clip_eps=0.2)
    per_token = [-1.2, -1.0, 1.5]
    assert float(loss) == pytest.approx(sum(per_token) / 3)
    assert float(stats["clip_frac"]) == pytest.approx(1 / 3)
    assert float(stats["kl"]) == 0.0
    assert float(stats["ratio"]) == pytest.approx((1.5 + 1.0 + 1.5) / 3)
    seq, _ = policy_loss(logp, old, adv, mask, clip_eps=0.2, aggregation="sequence")
    assert float(seq) == pytest.approx(((-1.2 - 1.0) / 2 + 1.5) / 2)
    # k3 KL: exp(d) - d - 1 with d = ref - logp
    ref = logp + torch.tensor([[0.1, -0.2, 0.0], [0.3, 0.0, 0.0]])
    with_kl, stats = policy_loss(logp, old, adv, mask, clip_eps=0.2, ref_logp=ref, kl_coef=0.5)
    k3 = [math.exp(d) - d - 1 for d in (0.1, -0.2, 0.3)]
    assert float(stats["kl"]) == pytest.approx(sum(k3) / 3, rel=1e-5)
    assert float(with_kl) == pytest.approx((sum(per_token) + 0.5 * sum(k3)) / 3, rel=1e-5)
    # the gradient of the unclipped tokens is -A * ratio; a clipped token has none
    logp = logp.clone().requires_grad_(True)
    policy_loss(logp, old, adv, mask, clip_eps=0.2)[0].backward()
    torch.testing.assert_close(logp.grad, torch.tensor([[0.0, -1.0, 0.0], [1.5, 0.0, 0.0]]) / 3)


def test_completions_cut_at_the_first_end_token():
    from vtgcore.mm.grpo import completions

    new = torch.tensor([[5, 6, 2, 7, 2], [5, 5, 5, 5, 5], [2, 9, 9, 9, 9]])
    ids, mask, answers = completions(new, eos_id=2, pad_id=0)
    assert ids.tolist() == [[5, 6, 2, 0, 0], [5, 5, 5, 5, 5], [2, 0, 0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]]
    assert answers == [[5, 6], [5, 5, 5, 5, 5], []]


# -- the policy's log-probabilities ---------------------------------------------------------------

def _batch(model, synth_dir, n=2):
    """A left-padded generation batch of ``n`` held-out MR queries of different lengths."""
    from vtgcore.data.dataset import FrameConfig, VideoCollator, VideoConversationDataset
    from vtgcore.data.formats import load_eval

    items = load_eval(synth_dir / "val" / "charades.json", "charades")[:n]
    items[0].query = items[0].query + " while the background stays still and nothing else moves"
    frames = FrameConfig(4, "uniform", image_size=model.vtg.encoder.image_size, mean=model.vtg.encoder.mean,
                         std=model.vtg.encoder.std)
    data = VideoConversationDataset(items, frames, video_root=synth_dir)
    return VideoCollator(model.processor, add_generation_prompt=True)([data[i] for i in range(n)])


@pytest.fixture(scope="module")
def grpo_model(tiny_run, synth_dir):
    from vtgcore.checkpoint import load_checkpoint
    from vtgcore.mm.grpo import VTGGRPOModel

    model = VTGGRPOModel(load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.num_frames=4",
                                              "data.feature_cache=null"]))
    load_checkpoint(model.vtg, tiny_run)
    return model.eval()


def test_logprobs_are_those_generation_sampled_from(grpo_model, synth_dir):
    """Greedy answers of a left-padded batch: each answer token is the argmax of the policy's
    distribution at its position (every alternative scored by completion_logprobs), the
    distribution sums to 1, and a row scores the same alone (no padding) as in the batch."""
    vtg = grpo_model.vtg
    batch = _batch(grpo_model, synth_dir)
    assert (batch["attention_mask"][:, 0] == 0).any()  # one row is left-padded
    new = vtg.generate(batch["frames"], batch["timestamps"], batch["input_ids"], batch["attention_mask"],
                       frame_mask=batch["frame_mask"], do_sample=False, max_new_tokens=6)
    from vtgcore.mm.grpo import completions

    ids, mask, _ = completions(new, vtg.tokenizer.eos_token_id, vtg.tokenizer.pad_token_id)
    full = torch.cat([batch["input_ids"], ids], 1)
    attn = torch.cat([batch["attention_mask"], mask], 1)
    scored = torch.cat([torch.zeros_like(batch["attention_mask"]), mask], 1).bool()
    args = (batch["frames"], batch["timestamps"])
    with torch.no_grad():
        lp = vtg.completion_logprobs(*args, full, attn, scored, frame_mask=batch["frame_mask"])
        assert bool((lp[~scored] == 0).all()) and bool((lp[scored] < 0).all())
        s = batch["input_ids"].shape[1]
        others = torch.tensor([i for i in range(len(vtg.tokenizer)) if i != vtg.video_token_id])  # not a placeholder
        vocab = len(others)
        for row in range(2):
            for step in (0, int(mask[row].sum()) - 1):  # the first and the last answer token
                pos = s + step
                alts = full[row:row + 1].repeat(vocab, 1)
                alts[:, pos] = others
                only = torch.zeros_like(scored[row:row + 1].repeat(vocab, 1))
                only[:, pos] = True
                rep = [t[row:row + 1].repeat(vocab, *([1] * (t.dim() - 1))) for t in args]
                every = vtg.completion_logprobs(*rep, alts, attn[row:row + 1].repeat(vocab, 1), only,
                                                frame_mask=batch["frame_mask"][row:row + 1].repeat(vocab, 1))[:, pos]
                assert -0.05 < float(torch.logsumexp(every, 0)) <= 1e-5  # all but the placeholder's mass
                assert int(others[every.argmax()]) == int(full[row, pos])
                assert float(every.max()) == pytest.approx(float(lp[row, pos]), abs=1e-3)  # batch of V rows vs 2
        # the padded row alone, without its padding
        row = int((batch["attention_mask"][:, 0] == 0).nonzero()[0])
        keep = attn[row].bool()
        alone = vtg.completion_logprobs(batch["frames"][row:row + 1], batch["timestamps"][row:row + 1],
                                        full[row:row + 1, keep], attn[row:row + 1, keep], scored[row:row + 1, keep],
                                        frame_mask=batch["frame_mask"][row:row + 1])
        torch.testing.assert_close(alone[0], lp[row, keep], rtol=0, atol=1e-5)
        hot = vtg.completion_logprobs(*args, full, attn, scored, frame_mask=batch["frame_mask"], temperature=2.0)
        assert not torch.allclose(hot[scored], lp[scored])
        # a group of rows per video: the video encoded once gives what every row's own copy gives
        rows = torch.tensor([0, 0, 1, 1])
        grouped = vtg.completion_logprobs(*args, full[rows], attn[rows], scored[rows], frame_mask=batch["frame_mask"],
                                          group=2)
        copied = vtg.completion_logprobs(*(t[rows] for t in args), full[rows], attn[rows], scored[rows],
                                         frame_mask=batch["frame_mask"][rows])
        torch.testing.assert_close(grouped, copied, rtol=0, atol=1e-6)
        torch.testing.assert_close(grouped[::2], lp, rtol=0, atol=1e-5)
        # an answer that samples the video placeholder's id: scored as a plain token, the prompt's
        # video slots unchanged (the tokens before it score as before)
        odd = full.clone()
        odd[0, s + 1] = vtg.video_token_id
        with_slot = vtg.completion_logprobs(*args, odd, attn, scored, frame_mask=batch["frame_mask"])
        torch.testing.assert_close(with_slot[0, :s + 1], lp[0, :s + 1], rtol=0, atol=1e-6)
        assert bool(torch.isfinite(with_slot).all()) and float(with_slot[0, s + 1]) < 0


def test_reference_policy_kl_is_zero_at_the_start(grpo_model, synth_dir):
    from torch.func import functional_call

    batch = _batch(grpo_model, synth_dir)
    new = grpo_model.vtg.generate(batch["frames"], batch["timestamps"], batch["input_ids"], batch["attention_mask"],
                                  frame_mask=batch["frame_mask"], do_sample=False, max_new_tokens=4)
    samples = {"timestamps": batch["timestamps"], "frame_mask": batch["frame_mask"],
               "input_ids": torch.cat([batch["input_ids"], new], 1),
               "attention_mask": torch.cat([batch["attention_mask"], torch.ones_like(new)], 1),
               "completion_mask": torch.cat([torch.zeros_like(batch["input_ids"]), torch.ones_like(new)], 1).bool()}
    grpo_model.settings["kl_coef"] = 0.1
    try:
        grpo_model.keep_reference()
        assert set(grpo_model.training_state()) == {f"reference.{n}" for n, p in grpo_model.vtg.named_parameters()
                                                    if p.requires_grad}
        with torch.no_grad():
            own = grpo_model(batch["frames"], samples, mode="logprobs")
            changed = {f"vtg.{n}": t + 0.05 for n, t in grpo_model.reference.items()}
            moved = functional_call(grpo_model, changed, (batch["frames"], samples), {"mode": "logprobs"})
            ref = functional_call(grpo_model, {f"vtg.{n}": t for n, t in grpo_model.reference.items()},
                                  (batch["frames"], samples), {"mode": "logprobs"})
        torch.testing.assert_close(ref, own, rtol=0, atol=0)
        assert not torch.allclose(moved, own)
    finally:
        grpo_model.settings["kl_coef"] = 0.0
        grpo_model.reference = {}


# -- training ---------------------------------------------------------------------------------------

def grpo_recipe(synth_dir, *extra):
    return load_recipe(RECIPE, [f"data.video_root={synth_dir}", "data.feature_cache=null", "data.num_frames=4",
                                "data.train.batch_size=2", "training.grpo.group_size=3",
                                "training.grpo.max_new_tokens=16", "training.grpo.passes=2",
                                "training.grpo.kl_coef=0.05", "runner.train_cfg.max_iters=4",
                                "runner.checkpoint_interval=2", "runner.log_interval=2",
                                "runner.optim_wrapper.optimizer.lr=1e-3", *extra])


class Kill(Hook):
    def __init__(self, at):
        self.at = at

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        if runner.iter + 1 == self.at:
            raise KeyboardInterrupt


class Outputs(Hook):
    priority = "LOWEST"

    def __init__(self):
        self.rows = []

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        self.rows.append({k: float(v) for k, v in outputs.items()})


def _train(rec, work_dir, load_from=None, resume=False, hooks=()):
    from vtgcore.mm.runner import build_runner

    runner = build_runner(rec, work_dir=str(work_dir), load_from=load_from, resume=resume)
    for hook in hooks:
        runner.register_hook(hook)
    runner.train()
    return runner


def _trainable(runner):
    return {k: v.detach().clone() for k, v in runner.model.vtg.named_parameters() if v.requires_grad}


def test_grpo_trains_from_sft_and_resumes_exactly(synth_dir, tiny_run, tmp_path):
    from safetensors.torch import load_file

    outputs = Outputs()
    full = _train(grpo_recipe(synth_dir), tmp_path / "full", load_from=str(tiny_run), hooks=[outputs])
    start = {k: v for k, v in _train(grpo_recipe(synth_dir, "runner.train_cfg.max_iters=1",
                                                 "runner.optim_wrapper.optimizer.lr=1e-30"), tmp_path / "start",
                                     load_from=str(tiny_run)).model.reference.items()}
    after = _trainable(full)
    assert any(not torch.equal(after[k], start[k]) for k in after)  # it learned something
    # the reference is the SFT policy, unchanged by training, and saved with every checkpoint
    for name, value in full.model.reference.items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=0)
    saved = load_file(str(tmp_path / "full" / "checkpoints" / "iter_4" / "objective.safetensors"))
    assert set(saved) == {f"reference.{n}" for n in start}
    # the log: reward statistics, parse rate, KL and clip fraction every iteration
    assert len(outputs.rows) == 4
    for row in outputs.rows:
        assert {"loss", "reward_mean", "reward_std", "parse_rate", "kl", "clip_frac", "answer_tokens"} <= set(row)
        assert 0.0 <= row["reward_mean"] <= 1.0 and 0.0 <= row["parse_rate"] <= 1.0 and row["kl"] >= 0.0
    assert any(row["parse_rate"] > 0 for row in outputs.rows)
    samples = [json.loads(line) for line in (tmp_path / "full" / "grpo_samples.jsonl").read_text().splitlines()]
    assert [s["iter"] for s in samples] == [1, 1, 2, 2, 4, 4]  # the first iteration, then every log_interval
    assert all(len(s["answers"]) == 3 and s["task"] == "mr" and len(s["truth"]) == 1 for s in samples)
    for s in samples:
        for answer in s["answers"]:
            assert 0.0 <= answer["reward"] <= 1.0 and isinstance(answer["text"], str)
    log = next((tmp_path / "full").rglob("*.log")).read_text()
    assert "GRPO samples at iteration 2" in log and "reward_mean" in log and "clip_frac" in log
    # killed after the iteration-2 checkpoint, resumed: the same weights as the uninterrupted run
    with pytest.raises(KeyboardInterrupt):
        _train(grpo_recipe(synth_dir), tmp_path / "killed", load_from=str(tiny_run), hooks=[Kill(at=3)])
    resumed = _train(grpo_recipe(synth_dir), tmp_path / "killed", load_from=str(tiny_run), resume="auto")
    assert resumed.iter == 4
    for name, value in _trainable(resumed).items():
        torch.testing.assert_close(value, after[name], rtol=0, atol=0, msg=name)
    for name, value in resumed.model.reference.items():
        torch.testing.assert_close(value, start[name], rtol=0, atol=0)
    # a checkpoint without the reference cannot resume a run that keeps one
    (tmp_path / "killed" / "checkpoints" / "iter_4" / "objective.safetensors").unlink()
    from vtgcore.errors import CheckpointError

    with pytest.raises(CheckpointError, match="objective.safetensors"):
        _train(grpo_recipe(synth_dir, "runner.train_cfg.max_iters=6"), tmp_path / "killed", resume="auto")


def test_grpo_checkpoint_evaluates_with_vtg_eval(synth_dir, tiny_run, tmp_path):
    from vtgcore.apps.cli import main

    _train(grpo_recipe(synth_dir, "runner.train_cfg.max_iters=1", "training.grpo.kl_coef=0"), tmp_path / "w",
           load_from=str(tiny_run))
    assert not list((tmp_path / "w").rglob("objective.safetensors"))  # no KL term: no reference kept
    assert main(["eval", str(RECIPE), f"data.video_root={synth_dir}", "data.num_frames=4", "data.feature_cache=null",
                 "--checkpoint", str(tmp_path / "w"), "--task", "mr", "--out", str(tmp_path / "e")]) == 0
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())["moment_retrieval"]
    assert {"R1@0.3", "R1@0.5", "R1@0.7", "mIoU"} <= set(metrics)


DIST_SCRIPT = """
import sys
from vtgcore.config.loader import load_recipe
from vtgcore.data.feature_cache import weights_digest
from vtgcore.mm.runner import build_runner
from mmengine.dist import get_rank
rec = load_recipe(sys.argv[1], sys.argv[4:])
runner = build_runner(rec, work_dir=sys.argv[2], launcher="pytorch", load_from=sys.argv[3])
assert type(runner.model).__name__ == "GRPODistributedDataParallel", type(runner.model)
runner.train()
open(f"{sys.argv[2]}/rank{get_rank()}.digest", "w").write(weights_digest(runner.model.module.vtg))
"""


@pytest.mark.slow
def test_grpo_two_processes_gloo_end_with_identical_weights(synth_dir, tiny_run, tmp_path):
    script = tmp_path / "dist_grpo.py"
    script.write_text(DIST_SCRIPT)
    overrides = [f"data.video_root={synth_dir}", "data.feature_cache=null", "data.num_frames=4",
                 "data.train.batch_size=1", "training.grpo.group_size=2", "training.grpo.max_new_tokens=12",
                 "training.grpo.kl_coef=0.05", "runner.train_cfg.max_iters=2", "runner.checkpoint_interval=2",
                 "runner.optim_wrapper.optimizer.lr=1e-3"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29541",
           str(script), str(RECIPE), str(tmp_path), str(tiny_run), *overrides]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    d0, d1 = (tmp_path / "rank0.digest").read_text(), (tmp_path / "rank1.digest").read_text()
    assert d0 == d1
    from vtgcore.data.feature_cache import weights_digest
    from vtgcore.mm.grpo import VTGGRPOModel
    from vtgcore.checkpoint import load_checkpoint

    model = VTGGRPOModel(load_recipe(RECIPE, overrides))
    load_checkpoint(model.vtg, tiny_run)
    assert weights_digest(model.vtg) != d0  # the two processes trained, in step


# -- recipes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("override, message", [
    ("training.objective=ppo", "training.objective is 'ppo'; allowed: sft, grpo"),
    ("training.grpo.reward.name=nope", "unknown reward plugin 'nope'"),
    ("training.grpo.reward.params.threshold=2", "threshold must be in"),
    ("training.grpo.group_size=1", "training.grpo.group_size"),
    ("training.grpo.clip_eps=0", "training.grpo.clip_eps"),
    ("training.grpo.loss_aggregation=mean", "training.grpo.loss_aggregation is 'mean'; allowed: token, sequence"),
    ("data.train.sources=[vtg-synth-mr]", "not used with training.objective grpo"),
    ("data.train.format=vtg-it", "is not an evaluation format"),
    ("~data.train.annotation", "set data.train.annotation"),
])
def test_bad_grpo_recipes_are_refused_at_load(override, message):
    with pytest.raises(RecipeError, match=message.replace("(", r"\(").replace("[", r"\[")):
        load_recipe(RECIPE, [override])


def test_grpo_refuses_gradient_accumulation(synth_dir, tmp_path):
    from vtgcore.mm.runner import build_runner

    with pytest.raises(RecipeError, match="runner.accumulate"):
        build_runner(grpo_recipe(synth_dir, "runner.accumulate=2"), work_dir=str(tmp_path))


def test_sft_recipes_default_to_the_sft_objective():
    rec = load_recipe(ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml")
    assert rec.training.objective == "sft"
