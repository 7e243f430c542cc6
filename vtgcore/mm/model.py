"""``VTGModel``: the mmengine ``BaseModel`` around :class:`vtgcore.model.VideoLLM`, and its data
preprocessor, which tokenizes with the model's processor and moves batches to the device."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor, BaseModel
from omegaconf import DictConfig

from vtgcore.mm.registry import MODELS


def loss_dict(lm_loss: torch.Tensor, aux_losses: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """mmengine's loss dict: ``loss_lm`` and every auxiliary loss under a key containing ``loss``.

    mmengine optimises the sum of the entries whose key contains ``"loss"`` and only logs the
    others, while :class:`~vtgcore.model.VideoLLM` adds every auxiliary loss to its total; an
    auxiliary loss named without ``loss`` (``"commitment"``) is renamed ``loss_commitment`` so that
    both paths optimise the same total.
    """
    out = {"loss_lm": lm_loss}
    for name, value in aux_losses.items():
        out[name if "loss" in name else f"loss_{name}"] = value
    return out


@MODELS.register_module()
class VideoDataPreprocessor(BaseDataPreprocessor):
    """Turns a collated batch (:class:`vtgcore.data.dataset.VideoCollator` without a processor) into
    model inputs: training batches get answers and labels, evaluation batches generation prompts.

    The processor is attached by :class:`VTGModel` after the model is built.
    """

    def __init__(self, non_blocking: bool = False) -> None:
        super().__init__(non_blocking)
        self.processor: Any = None

    def forward(self, data: dict, training: bool = False) -> dict:
        """Tokenize and move to the device.

        Shape:
            data["frames"]: (B, T, 3, H, W) -> inputs (B, T, 3, H, W) on the device;
            data_samples carry timestamps, frame_mask (B, T) and input_ids, attention_mask, labels (B, S)
        """
        samples = {k: v for k, v in data.items() if k != "frames"}
        frames = data["frames"]
        if frames.numel() and self.processor is not None:
            from vtgcore.errors import VTGError

            real = data.get("frame_seconds")  # float64 seconds: prompts never come from the float32 tensor
            if real is None:
                from vtgcore.data.video import seconds_list

                real = [seconds_list(ts[mask]) for ts, mask in zip(data["timestamps"], data["frame_mask"])]
            try:
                samples.update(self.processor(data["turns"], real, add_generation_prompt=not training,
                                              num_frames=frames.shape[1]))
            except VTGError as exc:  # say which video: the same class, its message prefixed
                message = f"{self._culprit(data, real, training, frames.shape[1])}: {exc}"
                try:
                    named = type(exc)(message)
                except Exception:  # noqa: BLE001 - a class with another constructor
                    named = VTGError(message)
                raise named from exc
        return {"inputs": self.cast_data(frames), "data_samples": self.cast_data(samples)}

    def _culprit(self, data: dict, real: list, training: bool, num_frames: int) -> str:
        """The video of the first sample whose prompt cannot be built (for the error message)."""
        from vtgcore.errors import VTGError

        for turns, times, video in zip(data["turns"], real, data.get("videos", [])):
            try:
                self.processor.encode_conversation(turns, times, not training, num_frames=num_frames)
            except VTGError:
                return str(video)
        return "a sample of this batch"


@MODELS.register_module()
class VTGModel(BaseModel):
    """mmengine wrapper: ``forward(inputs, data_samples, mode)`` with ``loss``, ``predict``, ``tensor``.

    Args:
        recipe: a recipe (path or loaded) to build the :class:`VideoLLM` from.
        overrides: command-line style overrides applied to a recipe path.
        data_preprocessor: preprocessor config or module (default :class:`VideoDataPreprocessor`).
        generation: :class:`vtgcore.eval.generate.GenerationConfig` fields for ``predict``.
        legacy_parser: parse predictions with the original regex parsers.
        init_cfg: mmengine init config (unused; weights come from plugins and checkpoints).
        trust_remote_code: the caller allows the recipe's ``trust_remote_code: true``
            (:func:`vtgcore.build.check_remote_code`; the recipe alone never turns it on).
    """

    def __init__(self, recipe: str | Path | DictConfig, overrides: Sequence[str] = (),
                 data_preprocessor: Optional[dict | BaseDataPreprocessor] = None,
                 generation: Optional[dict] = None, legacy_parser: bool = False,
                 init_cfg: Optional[dict] = None, *, trust_remote_code: bool = False) -> None:
        from vtgcore.build import build_model
        from vtgcore.config.loader import load_recipe
        from vtgcore.eval.generate import GenerationConfig

        super().__init__(data_preprocessor=data_preprocessor or VideoDataPreprocessor(), init_cfg=init_cfg)
        if not isinstance(recipe, DictConfig):
            recipe = load_recipe(recipe, list(overrides))
        self.recipe = recipe
        self.vtg, self.processor = build_model(recipe, trust_remote_code=trust_remote_code)
        self.data_preprocessor.processor = self.processor
        self.generation = GenerationConfig(**(generation or {}))
        self.legacy_parser = legacy_parser

    def forward(self, inputs: torch.Tensor, data_samples: dict, mode: str = "tensor") -> Any:
        """Run in one of mmengine's three modes.

        Returns:
            ``loss``: a dict of losses (``loss_lm`` plus auxiliary losses); ``predict``: one dict
            per video (``task``, ``id``, ``pred``, ``gt``, ``text``, ``parsed_ok``); ``tensor``:
            the logits.

        Shape:
            inputs: (B, T, 3, H, W); data_samples["input_ids"]: (B, S) -> logits (B, S, V)
        """
        if mode == "loss":
            if inputs.numel() == 0:  # every video of the batch was skipped
                return {"loss_lm": self.zero_loss()}
            out = self.vtg(inputs, data_samples["timestamps"], data_samples["input_ids"],
                           data_samples["attention_mask"], data_samples["labels"],
                           frame_mask=data_samples["frame_mask"], return_logits=False)
            return loss_dict(out.lm_loss, out.aux_losses)
        if mode == "predict":
            return self.predict(inputs, data_samples)
        if mode == "tensor":
            return self.vtg(inputs, data_samples["timestamps"], data_samples["input_ids"],
                            data_samples["attention_mask"], frame_mask=data_samples["frame_mask"]).logits
        raise RuntimeError(f"invalid mode {mode!r}; use 'loss', 'predict' or 'tensor'")

    def zero_loss(self) -> torch.Tensor:
        """A zero loss that touches every trainable parameter, for a batch whose every video was
        skipped (the optimizer step and, under DDP, the gradient reduction still happen)."""
        return sum(p.sum() * 0 for p in self.parameters() if p.requires_grad)

    def training_state(self) -> dict[str, torch.Tensor]:
        """Tensors of the training objective that a checkpoint keeps besides the trainable weights
        (none for SFT; GRPO's reference policy), saved by :class:`vtgcore.mm.hooks.VTGCheckpointHook`."""
        return {}

    def load_training_state(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore what :meth:`training_state` gave.

        Raises:
            CheckpointError: the checkpoint holds objective tensors this run does not keep.
        """
        if tensors:
            from vtgcore.errors import CheckpointError

            raise CheckpointError(f"the checkpoint holds {len(tensors)} tensors of another training objective")

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples: dict) -> list[dict[str, Any]]:
        """Generate, decode times by id and parse with the task parser of each item."""
        from vtgcore.eval.generate import generate_batch
        from vtgcore.eval.parsers import parse

        if inputs.numel() == 0:
            return []
        batch = {"frames": inputs, **data_samples}
        outputs = generate_batch(self.vtg, batch, self.generation)
        results = []
        for item, out, duration in zip(data_samples["items"], outputs, data_samples["duration"].tolist()):
            task = getattr(item, "task", "mr")
            text = out["legacy_text"] if self.legacy_parser else out["text"]  # the original's parsers read its text
            parsed = parse(task, text, duration=item.duration or duration, legacy=self.legacy_parser)
            # the original's highlight script keeps its clip scores even when it counts a failure
            kept = parsed.ok or (self.legacy_parser and task == "hd" and bool(parsed.value))
            results.append({"task": task, "id": item.id, "pred": parsed.value if kept else None,
                            "parsed_ok": parsed.ok, "gt": item, "text": out["text"]})
        return results
