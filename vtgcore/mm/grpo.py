"""GRPO: RL post-training with verifiable rewards (``training.objective: grpo``), on mmengine.

Group relative policy optimisation (DeepSeekMath; the RL stage of Time-R1, TimeZero, VideoChat-R1,
TimeLens) without a value model. Every iteration of ``vtg train`` takes one batch of prompts with
their ground truth (an evaluation-format annotation, :class:`vtgcore.mm.datasets.VTGPromptDataset`)
and:

1. samples ``group_size`` answers per prompt with the batched generation path (the video encoded once,
   each prompt expanded to its group by ``num_return_sequences``, the KV cache, the recipe's
   temperature and top-p), with dropout off;
2. scores each answer with the recipe's reward plugin (:class:`vtgcore.interfaces.Reward`) on the
   text evaluation reads (:func:`vtgcore.eval.generate.render_times`: times located by token id);
3. normalises the rewards within each prompt's group (:func:`group_advantages`);
4. takes ``passes`` optimizer steps on the clipped policy-ratio objective (:func:`policy_loss`),
   the ratio taken to the policy that sampled the answers, plus ``kl_coef`` times the k3 estimate of
   the KL divergence to the reference policy: the model as the run started (its trainable tensors
   are kept, so with LoRA this is the SFT adapters, not the base model; a checkpoint keeps them for
   an exact resume).

Under ``torchrun`` every process samples and scores its own prompts; the policy's forward runs
through :class:`GRPODistributedDataParallel`, so gradients are averaged over processes.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from mmengine.model.wrappers import MMDistributedDataParallel

from vtgcore.errors import CheckpointError, VTGError
from vtgcore.mm.model import VTGModel
from vtgcore.mm.registry import MODEL_WRAPPERS, MODELS

ADVANTAGE_EPS = 1e-4
"""Added to a group's reward standard deviation before dividing (as TRL's GRPO)."""


def group_advantages(rewards: torch.Tensor, group_size: int, scale: bool = True) -> torch.Tensor:
    """Rewards centred on their group's mean and, with ``scale``, divided by the group's standard
    deviation (unbiased) + :data:`ADVANTAGE_EPS`. A group whose answers all score the same gets 0.

    Args:
        rewards: the rewards, ``group_size`` consecutive answers per prompt.
        group_size: answers per prompt (G).
        scale: divide by the group's standard deviation (GRPO); False centres only (Dr. GRPO).

    Shape:
        rewards: (N * G,) -> (N * G,)
    """
    groups = rewards.reshape(-1, group_size)
    centred = groups - groups.mean(1, keepdim=True)
    if scale:
        centred = centred / (groups.std(1, keepdim=True) + ADVANTAGE_EPS)
    return centred.reshape(-1)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (values * mask).sum() / mask.sum().clamp(min=1.0)


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str = "token") -> torch.Tensor:
    """The loss from per-token terms: ``token``, the mean over every answer token of the batch;
    ``sequence``, each answer's token mean, then the mean over the answers that have tokens.

    Shape:
        per_token, mask: (N, S) -> scalar
    """
    if how == "token":
        return _masked_mean(per_token, mask)
    if how == "sequence":
        counts = mask.sum(1)
        rows = counts > 0
        if not bool(rows.any()):
            return (per_token * mask).sum()
        return ((per_token * mask).sum(1)[rows] / counts[rows]).mean()
    raise VTGError(f"unknown loss aggregation {how!r}; allowed: token, sequence")


def policy_loss(logp: torch.Tensor, old_logp: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
                clip_eps: float, ref_logp: Optional[torch.Tensor] = None, kl_coef: float = 0.0,
                aggregation: str = "token") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GRPO's clipped surrogate with an optional KL penalty, to minimise.

    Per answer token: ``-min(r A, clip(r, 1 - eps, 1 + eps) A) + kl_coef * kl`` with the ratio
    ``r = exp(logp - old_logp)``, the answer's advantage ``A`` and the k3 estimator ``kl =
    exp(ref - logp) - (ref - logp) - 1`` (>= 0), aggregated by :func:`aggregate`.

    Args:
        logp: log-probabilities of the answer tokens under the policy being optimised.
        old_logp: the same under the policy that sampled them (no gradient).
        advantages: one per answer (:func:`group_advantages`).
        mask: 1 at the answer tokens.
        clip_eps: clipping range of the ratio.
        ref_logp: the same under the reference policy (None: no KL term).
        kl_coef: weight of the KL term.
        aggregation: ``token`` or ``sequence``.

    Returns:
        The loss and, detached, ``kl`` (token mean of the k3 estimate; 0 without a reference),
        ``clip_frac`` (share of answer tokens whose clipped term is the one taken) and
        ``ratio`` (token mean of ``r``).

    Shape:
        logp, old_logp, ref_logp, mask: (N, S); advantages: (N,) -> scalar
    """
    mask = mask.to(logp.dtype)
    ratio = torch.exp(logp - old_logp.detach())
    adv = advantages.to(logp.dtype).unsqueeze(1)
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv
    per_token = -torch.minimum(unclipped, clipped)
    kl = torch.zeros_like(logp)
    if ref_logp is not None:
        delta = ref_logp.detach() - logp
        kl = torch.exp(delta) - delta - 1.0
        if kl_coef:
            per_token = per_token + kl_coef * kl
    loss = aggregate(per_token, mask, aggregation)
    with torch.no_grad():
        stats = {"kl": _masked_mean(kl, mask), "clip_frac": _masked_mean((clipped < unclipped).to(mask.dtype), mask),
                 "ratio": _masked_mean(ratio, mask)}
    return loss, stats


def completions(new: torch.Tensor, eos_id: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, list[list[int]]]:
    """Generated rows cut at their first end token (kept: the model learns to stop).

    Returns:
        ``ids`` (pad after the end), ``mask`` (1 up to and including the end token; a row
        without one keeps every token) and each row's answer ids without the end token.

    Shape:
        new: (N, C) -> ids (N, C), mask (N, C), N lists
    """
    ids = new.clone()
    mask = torch.ones_like(new, dtype=torch.long)
    answers = []
    for i, row in enumerate(new.tolist()):
        end = row.index(eos_id) if eos_id in row else len(row)
        answers.append(row[:end])
        if end < len(row):
            mask[i, end + 1:] = 0
            ids[i, end + 1:] = pad_id
    return ids, mask, answers


def _parses(item: Any, text: str, duration: float) -> bool:
    from vtgcore.eval.parsers import parse

    try:
        return bool(text.strip()) and parse(item.task, text, duration=item.duration or duration).ok
    except VTGError:
        return False


@MODELS.register_module()
class VTGGRPOModel(VTGModel):
    """The model of a GRPO run: :class:`VTGModel` whose ``train_step`` is one GRPO iteration.

    Args: as :class:`VTGModel`; the settings come from the recipe's ``training.grpo``
    (:class:`vtgcore.config.schema.GRPOSpec`).

    Attributes:
        reference: the reference policy's trainable tensors (empty with ``kl_coef`` 0), set by
            :meth:`keep_reference`.
        log_interval: iterations between sample logs.
        samples_file: where sampled answers are appended as JSON lines (None: the run log only).
    """

    def __init__(self, recipe: Any, overrides: Sequence[str] = (), data_preprocessor: Any = None,
                 generation: Optional[dict] = None, legacy_parser: bool = False, init_cfg: Optional[dict] = None,
                 *, trust_remote_code: bool = False) -> None:
        from omegaconf import OmegaConf

        from vtgcore.build import build_reward

        super().__init__(recipe, overrides, data_preprocessor, generation, legacy_parser, init_cfg,
                         trust_remote_code=trust_remote_code)
        self.settings: dict[str, Any] = OmegaConf.to_container(self.recipe.training.grpo, resolve=True)
        self.reward = build_reward(self.settings["reward"], where="training.grpo.reward")
        self.reference: dict[str, torch.Tensor] = {}
        self.log_interval = 10
        self.samples_file: Optional[Path] = None

    # -- the reference policy, kept in checkpoints ------------------------------------------------

    def keep_reference(self) -> None:
        """Keep the trainable tensors as they are now as the reference policy (``kl_coef`` > 0)."""
        if self.settings["kl_coef"] > 0:
            self.reference = {n: p.detach().clone() for n, p in self.vtg.named_parameters() if p.requires_grad}

    def training_state(self) -> dict[str, torch.Tensor]:
        """The reference policy's tensors (``reference.<name>``), for the checkpoint."""
        return {f"reference.{name}": t for name, t in self.reference.items()}

    def load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the reference policy from a checkpoint.

        Raises:
            CheckpointError: the tensors are not the ones this run keeps.
        """
        expected = set(self.training_state())
        if set(tensors) != expected:
            missing, extra = sorted(expected - set(tensors)), sorted(set(tensors) - expected)
            raise CheckpointError(f"the checkpoint's reference policy does not fit this run (missing {missing[:3]}, "
                                  f"unexpected {extra[:3]})")
        for name in self.reference:
            self.reference[name] = tensors[f"reference.{name}"].to(self.reference[name].device,
                                                                   self.reference[name].dtype)

    # -- forward and step -----------------------------------------------------------------------------

    def forward(self, inputs: torch.Tensor, data_samples: dict, mode: str = "tensor") -> Any:
        """:meth:`VTGModel.forward`, plus ``logprobs``: the answer tokens' log-probabilities
        (:meth:`vtgcore.model.VideoLLM.completion_logprobs` at the sampling temperature;
        ``data_samples["group"]`` rows per video, default 1).

        Shape:
            inputs: (B, T, 3, H, W) or (B, T, L, Dv); data_samples["input_ids"]: (B * group, S) ->
            (B * group, S)
        """
        if mode == "logprobs":
            return self.vtg.completion_logprobs(inputs, data_samples["timestamps"], data_samples["input_ids"],
                                                data_samples["attention_mask"], data_samples["completion_mask"],
                                                frame_mask=data_samples["frame_mask"],
                                                temperature=self.settings["temperature"],
                                                group=int(data_samples.get("group", 1)))
        return super().forward(inputs, data_samples, mode)

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        """One GRPO iteration (see :meth:`grpo_step`)."""
        return self.grpo_step(data, optim_wrapper, self)

    def grpo_step(self, data: Any, optim_wrapper: Any, policy: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Sample, score, normalise and take ``passes`` optimizer steps.

        Args:
            data: a collated batch of prompts (:func:`vtgcore.mm.datasets.vtg_collate`).
            optim_wrapper: mmengine's optimizer wrapper.
            policy: the module whose forward computes the policy's log-probabilities with gradients:
                this model, or its DDP wrapper (gradients averaged over processes).

        Returns:
            Scalars for the log: ``loss``, ``reward_mean``, ``reward_std``, ``parse_rate``,
            ``kl``, ``clip_frac``, ``answer_tokens`` (mean answer length).
        """
        batch = self.data_preprocessor(data, training=False)
        inputs, samples = batch["inputs"], batch["data_samples"]
        if inputs.numel() == 0:  # every video of the batch was skipped
            zero = self.zero_loss()
            optim_wrapper.update_params(zero)
            return {"loss": zero.detach()}
        was_training = self.vtg.training
        self.vtg.eval()  # dropout off: the ratio compares the sampling policy with the one optimised
        try:
            rollout = self._rollout(inputs, samples)
            stats = self._optimise(rollout, optim_wrapper, policy)
        finally:
            self.vtg.train(was_training)
        self._log_samples(rollout)
        return stats

    @torch.no_grad()
    def _rollout(self, inputs: torch.Tensor, samples: dict[str, Any]) -> dict[str, Any]:
        """Sample G answers per prompt, score them, and build the rows the policy is scored on."""
        from vtgcore.eval.generate import render_times

        s, vtg = self.settings, self.vtg
        g = int(s["group_size"])

        def rep(t: torch.Tensor) -> torch.Tensor:
            return t.repeat_interleave(g, 0)

        # the video is encoded once per prompt; generation expands each prompt to its group
        new = vtg.generate(inputs, samples["timestamps"], samples["input_ids"], samples["attention_mask"],
                           frame_mask=samples["frame_mask"], do_sample=True, num_return_sequences=g,
                           temperature=float(s["temperature"]), top_p=float(s["top_p"]),
                           max_new_tokens=int(s["max_new_tokens"]))
        if new.shape[0] != inputs.shape[0] * g:
            raise VTGError(f"the LLM plugin {self.recipe.model.llm.name!r} returned {new.shape[0]} answers for "
                           f"{inputs.shape[0]} prompts x group_size {g}: its generate() must honour transformers' "
                           "num_return_sequences for training.objective grpo")
        prompt, prompt_mask = rep(samples["input_ids"]), rep(samples["attention_mask"])
        tok = vtg.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        ids, mask, answers = completions(new, tok.eos_token_id, pad)
        items = [item for item in samples["items"] for _ in range(g)]
        durations = rep(samples["duration"]).tolist()
        texts, rewards, parsed = [], [], []
        for item, answer, duration in zip(items, answers, durations):
            text = render_times(answer, vtg.time_codec, tok)
            value = float(self.reward.reward(item, text, answer, vtg.time_codec))
            if not math.isfinite(value):
                raise VTGError(f"reward {s['reward'].get('name')!r} returned {value} for the answer {text!r} "
                               f"(video {item.video}); a reward must be a finite number")
            texts.append(text)
            rewards.append(value)
            parsed.append(_parses(item, text, duration))
        device = new.device
        rewards_t = torch.tensor(rewards, dtype=torch.float32, device=device)
        zeros = torch.zeros_like(prompt_mask)
        return {"frames": inputs,  # one video per prompt: the policy's forward encodes it once for its group
                "samples": {"timestamps": samples["timestamps"], "frame_mask": samples["frame_mask"], "group": g,
                            "input_ids": torch.cat([prompt, ids.to(prompt.dtype)], 1),
                            "attention_mask": torch.cat([prompt_mask, mask.to(prompt_mask.dtype)], 1),
                            "completion_mask": torch.cat([zeros, mask.to(zeros.dtype)], 1).bool()},
                "rewards": rewards_t,
                "advantages": group_advantages(rewards_t, g, bool(s["scale_rewards"])),
                "parsed": parsed, "texts": texts, "items": items, "lengths": mask.sum(1).float()}

    def _optimise(self, rollout: dict[str, Any], optim_wrapper: Any,
                  policy: torch.nn.Module) -> dict[str, torch.Tensor]:
        """``passes`` optimizer steps on the clipped objective; the log scalars."""
        s = self.settings
        frames, samples = rollout["frames"], rollout["samples"]
        mask = samples["completion_mask"]
        old = None
        if int(s["passes"]) > 1:  # the sampling policy, before the first step changes it
            with torch.no_grad():
                old = self(frames, samples, mode="logprobs")
        ref = None
        if self.reference:
            from torch.func import functional_call

            with torch.no_grad():
                ref = functional_call(self, {f"vtg.{n}": t for n, t in self.reference.items()}, (frames, samples),
                                      {"mode": "logprobs"}, strict=False)
        totals: dict[str, float] = {}
        for _ in range(int(s["passes"])):
            with optim_wrapper.optim_context(policy):
                logp = policy(frames, samples, mode="logprobs")
            loss, stats = policy_loss(logp, logp.detach() if old is None else old, rollout["advantages"], mask,
                                      clip_eps=float(s["clip_eps"]), ref_logp=ref, kl_coef=float(s["kl_coef"]),
                                      aggregation=str(s["loss_aggregation"]))
            optim_wrapper.update_params(loss)
            for key, value in {"loss": loss.detach(), **stats}.items():
                totals[key] = totals.get(key, 0.0) + float(value) / int(s["passes"])
        rewards = rollout["rewards"]
        out = {key: torch.tensor(value) for key, value in totals.items() if key != "ratio"}
        out.update(reward_mean=rewards.mean().cpu(), reward_std=rewards.std(unbiased=False).cpu(),
                   parse_rate=torch.tensor(sum(rollout["parsed"]) / len(rollout["parsed"])),
                   answer_tokens=rollout["lengths"].mean().cpu())
        return out

    def _log_samples(self, rollout: dict[str, Any]) -> None:
        """Every ``log_interval`` iterations (and the first): the first ``log_samples`` prompts'
        answers with their rewards, to the run log and ``samples_file``."""
        from mmengine.dist import is_main_process
        from mmengine.logging import MessageHub, print_log

        count = int(self.settings["log_samples"])
        step = int(MessageHub.get_current_instance().get_info("iter", 0) or 0)
        if not count or not is_main_process() or (step and (step + 1) % max(1, self.log_interval)):
            return  # the first iteration and every log_interval-th, as mmengine's log lines
        g = int(self.settings["group_size"])
        rows, lines = [], []
        for p in range(min(count, len(rollout["items"]) // g)):
            item = rollout["items"][p * g]
            answers = [{"text": rollout["texts"][i], "reward": round(float(rollout["rewards"][i]), 4),
                        "parsed": bool(rollout["parsed"][i])} for i in range(p * g, (p + 1) * g)]
            truth = [list(w) for w in (item.windows or [])]
            rows.append({"iter": step + 1, "video": item.video, "task": item.task, "query": item.query,
                         "truth": truth, "answers": answers})
            lines.append(f"  {item.video} [{item.task}] {item.query!r} truth {truth}")
            lines += [f"    reward {a['reward']:.3f}  {a['text']!r}" for a in answers]
        print_log(f"GRPO samples at iteration {step + 1}:\n" + "\n".join(lines), logger="current")
        if self.samples_file is not None:
            with open(self.samples_file, "a", encoding="utf-8") as handle:
                handle.write("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


@MODEL_WRAPPERS.register_module()
class GRPODistributedDataParallel(MMDistributedDataParallel):
    """DDP for ``training.objective: grpo``: ``train_step`` is the module's GRPO step, with the
    policy's log-probabilities computed through this wrapper so that gradients are averaged over
    processes (sampling and scoring stay per process, on each process's own prompts)."""

    def train_step(self, data: Any, optim_wrapper: Any) -> dict[str, torch.Tensor]:
        return self.module.grpo_step(data, optim_wrapper, self)
