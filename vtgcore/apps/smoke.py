"""``vtg smoke``: build a recipe's model and overfit one generated batch for a few steps.

A quick end-to-end check of a recipe (every component, the splice, the loss, generation and time
decoding) that needs no data set. Frames are random; the question and answer name one window.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import torch
from omegaconf import DictConfig

from vtgcore.build import build_model


def run_smoke(recipe: DictConfig, steps: int = 20, lr: float = 3e-3, batch_size: int = 2,
              log: Callable[[str], Any] = print, where: str = "") -> dict[str, Any]:
    """Train ``steps`` AdamW steps on one generated batch, then generate once.

    Returns:
        ``{"losses": [...], "generated": text, "decoded_times": [...], "seconds": wall time}``.
    """
    start = time.perf_counter()
    model, proc = build_model(recipe, where=where)
    n = recipe.data.num_frames
    size = model.encoder.image_size
    g = torch.Generator().manual_seed(recipe.seed)
    frames = torch.randn(batch_size, n, 3, size, size, generator=g)
    ts = torch.linspace(0, 2.0 * (n - 1), n).expand(batch_size, n).contiguous()
    qa = [{"q": "When does the red circle appear?", "a": "From <time>2.0</time> to <time>6.0</time> seconds."}]
    batch = proc([qa] * batch_size, ts.tolist())
    trainable = [p for p in model.parameters() if p.requires_grad]
    log(f"built {recipe.experiment_name}: {sum(p.numel() for p in model.parameters()):,} parameters, "
        f"{sum(p.numel() for p in trainable):,} trainable, K={model.num_video_tokens(n)} video tokens")
    opt = torch.optim.AdamW(trainable, lr=lr)
    losses: list[float] = []
    model.train()
    for step in range(1, steps + 1):
        loss = model(frames, ts, batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        if step == 1 or step % 5 == 0 or step == steps:
            log(f"step {step:3d}/{steps}  loss {losses[-1]:.4f}")
    model.eval()
    prompt = proc([[{"q": qa[0]["q"]}]], ts[:1].tolist(), add_generation_prompt=True)
    ids = model.generate(frames[:1], ts[:1], prompt["input_ids"], prompt["attention_mask"], max_new_tokens=24)
    tokens: Sequence[int] = ids[0].tolist()
    text = model.tokenizer.decode(tokens, skip_special_tokens=True)
    times = model.time_codec.decode_ids(tokens, model.tokenizer)
    log(f"generated: {text!r}")
    log(f"decoded times (s): {times}")
    return {"losses": losses, "generated": text, "decoded_times": times, "seconds": time.perf_counter() - start}
