"""The paper's recipes (recipes/vtgllm): the base resolves to the paper's numbers, and every
evaluation, fine-tuning and ablation recipe differs from its parent only in the intended keys."""

import copy
from functools import lru_cache
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from vtgcore.config.loader import load_recipe

ROOT = Path(__file__).resolve().parents[1]
VTGLLM = ROOT / "recipes" / "vtgllm"
NAMING = {"experiment_name", "description", "work_dir"}


@lru_cache(maxsize=None)
def _resolved(name):
    return OmegaConf.to_container(load_recipe(VTGLLM / name), resolve=True)


def resolved(name):
    return copy.deepcopy(_resolved(name))


def flat(node, prefix=""):
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            out.update(flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: node}


def changed(name, parent="base.yaml"):
    """Dotted keys whose resolved value differs between ``name`` and ``parent`` (names left out)."""
    a, b = flat(resolved(parent)), flat(resolved(name))
    return {k for k in a.keys() | b.keys() if a.get(k, "<absent>") != b.get(k, "<absent>")} - NAMING


def test_base_is_the_paper_configuration(monkeypatch):
    from vtgcore.mm.batch import apply_global_batch
    from vtgcore.mm.runner import optim_wrapper_cfg

    r = resolved("base.yaml")
    model, data, runner = r["model"], r["data"], r["runner"]
    assert data["num_frames"] == 96
    enc = model["encoder"]
    assert enc["name"] == "eva_vit_g_qformer" and enc["trainable"] == "full"
    # the original's ViT precision: LAVIS's convert_weights_to_fp16 (Conv/Linear half) under fp16 autocast
    assert enc["params"]["freeze_vit"] is True and enc["params"]["vit_precision"] == "lavis_fp16"
    assert enc["params"]["freeze_qformer"] is False and enc["params"]["num_query_tokens"] == 32
    assert model["time_embedding"]["name"] == "abs_second_table"
    assert model["time_embedding"]["params"] == {"max_seconds": 8192, "init": "zeros", "out_of_range": "error",
                                                 "max_frames": 96, "interpolation": "none"}
    assert model["time_codec"]["name"] == "absolute_time_tokens"
    assert model["time_codec"]["params"]["init_from_digits"] is True and model["time_codec"]["params"]["fixed_format"] is True
    assert model["compressor"]["name"] == "slot" and model["compressor"]["params"]["num_slots"] == 256
    assert model["projector"]["name"] == "linear"
    llm = model["llm"]
    assert llm["trainable"] == "lora" and llm["params"]["gradient_checkpointing"] is True
    assert llm["params"]["dtype"] == "bfloat16"
    assert llm["lora"] == {"r": 32, "alpha": 32, "dropout": 0.1, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
                           "extra_trainable": ["embed_tokens", "lm_head"]}
    assert model["prompt"]["max_length"] == 2048
    # the original's prompt text and slow tokenizer (tests/test_replication_prompt.py)
    assert model["prompt"]["system"] == " " and model["prompt"]["chat_template"] == "llama2"
    assert model["prompt"]["video_template"] == "<Video>{video}</Video>" and model["prompt"]["layout"] == "vtgllm"
    assert model["prompt"]["video_position"] == "first" and model["prompt"]["timestamps_in_prompt"] is True
    assert llm["params"]["use_fast"] is False
    assert Path(model["init_from"]).name == "video_llama2_vl"  # ckpt: VL_LLaMA_2_7B_Finetuned.pth, converted
    mix = data["train"]["datasets"]
    assert [Path(e["annotation"]).parts[-2:] for e in mix] == [("vtg-it", "vtg-it-120k.json"), ("valley", "time_token.json")]
    assert [e["ratio"] for e in mix] == [1, 1] and data["train"]["batch_size"] == 1
    assert data["train"]["crop"] is True  # AlproVideoTrainProcessor's RandomResizedCropVideo(0.5-1)
    # the original's frame sampling and frame times (tests/test_replication.py, test_replication_prompt.py)
    assert data["train_sampling"] == "random_per_segment_legacy" and data["eval_sampling"] == "uniform_vtgllm"
    assert data["frame_times"] == "vtgllm"
    # optimizer: AdamW 3e-5, weight decay 0.05, bf16, DEFAULT_OPTIM clipping
    optim = optim_wrapper_cfg(dict(runner))
    assert optim["optimizer"]["type"] == "AdamW" and optim["optimizer"]["lr"] == 3e-5
    assert optim["optimizer"]["weight_decay"] == 0.05 and optim["clip_grad"] == {"max_norm": 1.0}
    assert optim["type"] == "AmpOptimWrapper" and optim["dtype"] == "bfloat16"
    # global batch 64 with batch 1 on 16 devices -> accumulate 4, 10 x 13562 micro-steps
    monkeypatch.setenv("WORLD_SIZE", "16")
    cfg = dict(runner)
    derived = apply_global_batch(cfg, batch_size=data["train"]["batch_size"], launcher="pytorch")
    assert derived["accumulate"] == 4 and derived["max_iters"] == 10 * 13562
    assert optim_wrapper_cfg(cfg)["accumulative_counts"] == 4
    # LR: warmup from 1e-6 over 8137 micro-steps = 2034 optimizer steps, cosine to 1e-5 at the end
    warmup, cosine = runner["param_scheduler"]
    assert warmup["type"] == "LinearLR" and warmup["end"] == 8137 // 4
    assert warmup["start_factor"] * 3e-5 == pytest.approx(1e-6)
    assert cosine["type"] == "CosineAnnealingLR" and cosine["eta_min"] == 1e-5
    assert (cosine["begin"], cosine["end"]) == (2034, runner["optimizer_steps"]) == (2034, 33905)


def test_on_8_devices_the_same_recipe_accumulates_8(monkeypatch):
    from vtgcore.mm.batch import apply_global_batch

    monkeypatch.setenv("WORLD_SIZE", "8")
    cfg = dict(resolved("base.yaml")["runner"])
    assert apply_global_batch(cfg, batch_size=1, launcher="pytorch")["accumulate"] == 8
    assert cfg["train_cfg"]["max_iters"] == 33905 * 8  # the same samples as on 16 devices


@pytest.mark.parametrize("name, benchmark, fmt", [
    ("eval_charades.yaml", "mr", "charades"), ("eval_qvhighlights.yaml", "hd", "qvhighlights"),
    ("eval_youcook2.yaml", "dvc", "youcook2"), ("eval_activitynet.yaml", "dvc", "activitynet"),
])
def test_eval_recipes(name, benchmark, fmt):
    from vtgcore.data.formats import EVAL_FORMATS

    r = resolved(name)
    # the original's evaluation: its interpolation code, sampling, top-p 0.8, 512 tokens, regex parsers
    assert r["model"]["time_embedding"]["params"]["interpolation"] == "legacy_swapped"
    assert r["eval"] == {"temperature": 1.0, "top_p": 0.8, "max_new_tokens": 512, "legacy_parser": True}
    assert list(r["data"]["val"]) == [benchmark] and r["data"]["val"][benchmark]["format"] == fmt in EVAL_FORMATS
    from vtgcore.processor import VTGLLM_EVAL_SYSTEM

    assert r["model"]["prompt"]["system"] == VTGLLM_EVAL_SYSTEM  # evaluate.py's system prompt
    keys = changed(name)
    assert keys == {"model.encoder.params.freeze_qformer", "model.time_embedding.params.interpolation",
                    "model.init_from",  # ckpt is the VTG-LLM checkpoint (--checkpoint), not Video-LLaMA's
                    "model.prompt.system",  # evaluate.py sets its own system prompt; training used " "
                    "data.video_root", f"data.val.{benchmark}.annotation", f"data.val.{benchmark}.format"}
    assert r["model"]["init_from"] is None


@pytest.mark.parametrize("name, epochs, iters, warmup, accum", [
    ("finetune_charades.yaml", 30, 775, 465, 1),  # max_epoch missing in the original: 30 chosen
    ("finetune_qvhighlights.yaml", 30, 429, 257, 1),
    ("finetune_youcook2.yaml", 100, 13562, 44, 4),
    ("finetune_activitynet.yaml", 100, 625, 375, 1),
])
def test_finetune_recipes_follow_the_original_table(monkeypatch, name, epochs, iters, warmup, accum):
    from vtgcore.mm.batch import apply_global_batch

    r = resolved(name)
    runner = r["runner"]
    monkeypatch.setenv("WORLD_SIZE", "16")
    cfg = dict(runner)
    derived = apply_global_batch(cfg, batch_size=r["data"]["train"]["batch_size"], launcher="pytorch")
    assert derived["accumulate"] == accum and derived["max_iters"] == epochs * iters
    first, cosine = runner["param_scheduler"]
    assert first["end"] == warmup // accum == cosine["begin"] and cosine["end"] == runner["optimizer_steps"]
    assert runner["checkpoint_interval"] == iters
    assert len(r["data"]["train"]["datasets"]) == 1
    assert {k.split(".")[0] for k in changed(name)} == {"data", "runner", "model"}
    assert {k for k in changed(name) if k.startswith("model.")} == {"model.init_from"}  # --load-from instead
    assert r["model"]["init_from"] is None
    assert {k for k in changed(name) if k.startswith("data.")} == {"data.train.datasets"}


ABLATIONS = {
    "compressor_cross.yaml": {"model.compressor.name", "model.compressor.params.num_queries",
                              "model.compressor.params.num_heads", "model.compressor.params.num_slots",
                              "model.compressor.params.init_std"},
    "compressor_diverse.yaml": {"model.compressor.name", "model.compressor.params.num_tokens",
                                "model.compressor.params.squared", "model.compressor.params.order",
                                "model.compressor.params.seed", "model.compressor.params.num_slots",
                                "model.compressor.params.init_std"},
    "compressor_entropy.yaml": {"model.compressor.name", "model.compressor.params.num_tokens",
                                "model.compressor.params.k", "model.compressor.params.weighting",
                                "model.compressor.params.temperature", "model.compressor.params.seed",
                                "model.compressor.params.num_slots", "model.compressor.params.init_std"},
    "compressor_codebook.yaml": {"model.compressor.name", "model.compressor.params.num_codes",
                                 "model.compressor.params.loss_weight", "model.compressor.params.num_slots",
                                 "model.compressor.params.init_std"},
    "no_absolute_time.yaml": {"model.time_embedding.name", "model.time_embedding.params.max_seconds",
                              "model.time_embedding.params.init", "model.time_embedding.params.out_of_range",
                              "model.time_embedding.params.interpolation",  # max_frames 96 stays
                              "model.init_from"},  # converted for this recipe: the table is time_embedding.weight
    "random_init_table.yaml": {"model.time_embedding.params.init"},
    "no_time_tokens.yaml": {"model.time_codec.name", "model.time_codec.params.decimals",
                            "model.time_codec.params.integer_digits", "model.time_codec.params.rounding",
                            "model.time_codec.params.out_of_range", "model.time_codec.params.init_from_digits",
                            "model.time_codec.params.fixed_format"},
    "no_token_init.yaml": {"model.time_codec.params.init_from_digits"},
    "no_fixed_format.yaml": {"model.time_codec.params.fixed_format"},
    "qformer_text_input.yaml": {"model.encoder.params.text_input", "model.encoder.params.text_tokenizer"},
}
EVAL_ABLATIONS = {
    "interpolation_off.yaml": "none",
    "interpolation_linear.yaml": "linear",
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_training_ablation_changes_only_its_axis(name):
    assert changed(f"ablations/{name}") == ABLATIONS[name]


def test_no_absolute_time_keeps_the_96_frame_table():
    te = resolved("ablations/no_absolute_time.yaml")["model"]["time_embedding"]
    assert te == {**te, "name": "frame_index", "params": {"max_frames": 96}}


@pytest.mark.parametrize("name", sorted(EVAL_ABLATIONS))
def test_eval_ablation_changes_only_the_interpolation(name):
    assert changed(f"ablations/{name}", parent="eval_charades.yaml") == {"model.time_embedding.params.interpolation"}
    assert resolved(f"ablations/{name}")["model"]["time_embedding"]["params"]["interpolation"] == EVAL_ABLATIONS[name]


def test_every_ablation_file_is_covered_and_listed_in_the_readme():
    files = {p.name for p in (VTGLLM / "ablations").glob("*.yaml")}
    assert files == set(ABLATIONS) | set(EVAL_ABLATIONS)
    readme = (VTGLLM / "README.md").read_text()
    for name in files:
        assert f"ablations/{name}" in readme


@pytest.mark.filterwarnings("ignore:Detected call of")
def test_base_lr_curve_through_mmengine_schedulers():
    import torch
    from mmengine.optim import OptimWrapper
    from mmengine.registry import PARAM_SCHEDULERS

    runner = resolved("base.yaml")["runner"]
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=runner["optim_wrapper"]["optimizer"]["lr"])
    wrapper = OptimWrapper(optimizer)
    schedulers = [PARAM_SCHEDULERS.build({**cfg}, default_args={"optimizer": wrapper}) for cfg in runner["param_scheduler"]]
    lrs = [optimizer.param_groups[0]["lr"]]
    for _ in range(runner["optimizer_steps"]):
        for scheduler in schedulers:
            scheduler.step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-6)  # warmup_lr
    assert max(lrs) == pytest.approx(3e-5) and lrs[2034] == pytest.approx(3e-5)  # init_lr after 2034 steps
    assert lrs[1017] == pytest.approx((1e-6 + 3e-5) / 2, rel=1e-3)  # linear
    assert lrs[33905] == pytest.approx(1e-5) and min(lrs[2034:]) >= 1e-5 - 1e-12  # min_lr at the end


@pytest.mark.parametrize("name", ["finetune_charades.yaml", "finetune_qvhighlights.yaml",
                                  "finetune_youcook2.yaml", "finetune_activitynet.yaml"])
def test_finetuning_keeps_the_replication_crop_and_vit_precision(name):
    """The original fine-tunes with the same dataset class (its own AlproVideoTrainProcessor: the
    random resized crop) and the same fp16 ViT."""
    r = resolved(name)
    assert r["data"]["train"]["crop"] is True
    assert r["model"]["encoder"]["params"]["vit_precision"] == "lavis_fp16"
