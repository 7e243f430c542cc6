"""The recipe schema. Plugin ``params`` are free here and checked against each plugin's own
config dataclass by :func:`vtgcore.config.loader.validate_plugins`.

Numeric fields declare their allowed range (:func:`vtgcore.ranges.in_range`); the loader
enforces it, so ``vtg recipe validate`` refuses what a run would die on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from omegaconf import MISSING

from vtgcore.ranges import SEED_MAX, in_range
from vtgcore.processor import VIDEO_LAYOUTS, PromptConfig  # noqa: F401  (VIDEO_LAYOUTS: the loader checks it)
from vtgcore.positions import SPREADS  # noqa: F401  (the loader checks model.time_positions.spread)

TRAINABLE = ("full", "frozen", "lora")
SAMPLINGS = ("uniform", "uniform_vtgllm", "random_per_segment", "random_per_segment_legacy")
READERS = ("decord", "pyav", "auto")
FRAME_TIMES = ("container", "vtgllm")
CHAT_TEMPLATES = ("llama2", "tokenizer")


@dataclass
class LoraSpec:
    """LoRA settings, used when a plugin's ``trainable`` is ``lora`` (VTG-LLM: r=32, alpha=32).

    Attributes:
        r: rank.
        alpha: scaling numerator.
        dropout: dropout on the adapter input.
        target_modules: module name suffixes to adapt.
        extra_trainable: base parameter name substrings trained in full beside the adapters.
    """

    r: int = in_range(32, low=1)
    alpha: int = in_range(32, low=0, low_open=True)
    dropout: float = in_range(0.1, low=0.0, high=1.0, high_open=True)
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"])
    extra_trainable: list[str] = field(default_factory=list)


@dataclass
class PluginSpec:
    """One component of the model.

    Attributes:
        name: registry name of the plugin (``vtg plugins`` lists them).
        params: the plugin's own settings, validated against its config dataclass.
        trainable: ``full``, ``frozen`` or ``lora``.
        checkpoint: local safetensors file loaded into this component after it is built.
        lora: LoRA settings when ``trainable`` is ``lora``.
    """

    name: str = MISSING
    params: dict[str, Any] = field(default_factory=dict)
    trainable: str = "full"
    checkpoint: Optional[str] = None
    lora: LoraSpec = field(default_factory=LoraSpec)


@dataclass
class TimePositionsSpec:
    """Time in the rotary positions (``model.time_positions``; :mod:`vtgcore.positions`): the video
    tokens' position ids follow their frame's absolute time, as Qwen2.5-VL's MRoPE temporal axis.

    Off by default (the LLM then gets no position ids: its own ``0, 1, ...``). Needs a compressor
    that keeps each token's frame (``identity``, ``diverse``, ``entropy``, ``codebook``; not
    ``slot``, ``cross_attention``, ``video_qformer``, whose tokens mix frames) and an LLM that
    takes position ids (``hf_causal_lm`` with a rotary LLaMA/Qwen-family model).

    Attributes:
        enabled: on or off.
        rate: position units per second: frame f's tokens sit at the text offset +
            ``round(seconds_f * rate)``.
        spread: ``share`` (a frame's tokens share its position) or ``spread`` (spread evenly over
            its slot up to the next frame's position).
    """

    enabled: bool = False
    rate: float = in_range(1.0, low=0.0, low_open=True)
    spread: str = "share"


@dataclass
class ModelSpec:
    """The seven components and how they are joined.

    Attributes:
        video_token: placeholder text expanded to K ids.
        encoder_chunk_size: frames per encoder call (0: all at once).
        prompt: prompt rendering (:class:`vtgcore.processor.PromptConfig`, used as it is).
        init_from: local vtgcore checkpoint folder or safetensors file whose tensors start the
            model (None: none). Loaded when the model is built: after every component is built
            (the ViT, Q-Former and LLM files of their params are loaded then) and before the
            components' own ``checkpoint`` files, as the original loads its ``ckpt`` after those;
            only the tensors the file holds are loaded, each must exist in the model with the same
            shape. The paper recipes start from Video-LLaMA-2's vision-language checkpoint, made by
            ``vtg convert video-llama VL_LLaMA_2_7B_Finetuned.pth DIR`` (``llama_proj`` and the
            frame-position table). A missing file is an error when the model is built, not when
            the recipe is validated.
        time_positions: time in the rotary positions (:class:`TimePositionsSpec`; off by default).
    """

    encoder: PluginSpec = field(default_factory=PluginSpec)
    time_embedding: PluginSpec = field(default_factory=lambda: PluginSpec(name="none"))
    grounding: PluginSpec = field(default_factory=lambda: PluginSpec(name="none"))
    time_codec: PluginSpec = field(default_factory=lambda: PluginSpec(name="plain_digits"))
    compressor: PluginSpec = field(default_factory=PluginSpec)
    projector: PluginSpec = field(default_factory=lambda: PluginSpec(name="linear"))
    llm: PluginSpec = field(default_factory=PluginSpec)
    video_token: str = "<video>"
    encoder_chunk_size: int = in_range(0, low=0)
    prompt: PromptConfig = field(default_factory=PromptConfig)
    init_from: Optional[str] = None
    time_positions: TimePositionsSpec = field(default_factory=TimePositionsSpec)


@dataclass
class DataSpec:
    """Data settings.

    Attributes:
        num_frames: frames sampled per video (96 in the paper).
        train_sampling: frame sampling for training.
        eval_sampling: frame sampling for evaluation (``uniform``, or ``uniform_vtgllm``: the
            original's float computation of the same indices, one frame earlier for a few video
            lengths; :func:`vtgcore.data.video.sample_indices`).
        reader: video reader (``auto``: decord when installed, else PyAV).
        frame_times: the seconds of each sampled frame, in the prompt and for the time embedding:
            ``container`` (its presentation time) or ``vtgllm`` (the original's
            ``round(index / avg_fps, 1)``, for replication).
        video_root: folder that relative video paths are resolved against.
        feature_cache: folder of the frozen-encoder feature cache (None: no cache).
        train: training data set settings.
        val: evaluation sets by task (``mr``, ``hd``, ``dvc``): ``{annotation, format}``.
        test: test sets, same layout as ``val``.
    """

    num_frames: int = in_range(96, low=1, high=100_000)
    train_sampling: str = "random_per_segment"
    eval_sampling: str = "uniform"
    reader: str = "auto"
    frame_times: str = "container"
    video_root: Optional[str] = None
    feature_cache: Optional[str] = None
    train: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)
    test: dict[str, Any] = field(default_factory=dict)


@dataclass
class EvalSpec:
    """How ``vtg eval`` generates and parses (its flags override these; ``vtg run`` uses its own).

    The defaults are vtgcore's (greedy, robust parsers); the paper's evaluation recipes set the
    original's (``evaluate.py``: sampling at temperature 1.0, top-p 0.8, 512 new tokens, its regex
    parsers on its decoded text).

    Attributes:
        temperature: sampling temperature; 0 is greedy decoding.
        top_p: nucleus sampling mass (with a temperature above 0).
        max_new_tokens: most tokens generated per answer.
        legacy_parser: parse with the original's regex parsers (``vtg eval --legacy-parser``).
    """

    temperature: float = in_range(0.0, low=0.0)
    top_p: float = in_range(1.0, low=0.0, high=1.0, low_open=True)
    max_new_tokens: int = in_range(256, low=1)
    legacy_parser: bool = False


OBJECTIVES = ("sft", "grpo")
LOSS_AGGREGATIONS = ("token", "sequence")


@dataclass
class GRPOSpec:
    """Group relative policy optimisation (``training.objective: grpo``; :mod:`vtgcore.mm.grpo`).

    For every training prompt the model samples ``group_size`` answers (batched generation with the
    KV cache), a reward plugin scores each, rewards are normalised within the prompt's group, and the
    clipped policy-ratio objective is optimised, optionally with a KL penalty to the starting policy;
    no value model. Training prompts and ground truth come from an evaluation-format annotation
    (``data.train: {annotation, format}``).

    Attributes:
        group_size: answers sampled per prompt (G).
        temperature: sampling temperature of the answers (and of the log-probabilities they are
            scored with).
        top_p: nucleus sampling mass of the answers.
        max_new_tokens: longest sampled answer.
        passes: optimisation passes (optimizer steps) over each batch of sampled answers; the
            ratio to the sampling policy is clipped, so passes after the first stay near it.
        clip_eps: the ratio is clipped to ``[1 - clip_eps, 1 + clip_eps]``.
        kl_coef: weight of the KL penalty to the reference policy, the model as the run started
            (its trainable tensors are kept; a resumed run restores them); 0: no reference kept.
        scale_rewards: divide each group's centred rewards by the group's standard deviation
            (GRPO); False: centre only (Dr. GRPO).
        loss_aggregation: ``token`` (the mean over every answer token of the batch) or
            ``sequence`` (each answer's token mean, then the mean over answers: GRPO's paper form).
        reward: the reward plugin spec ``{name, params}`` (``vtg plugins`` lists them; a
            ``weighted_sum`` composes several).
        log_samples: prompts whose sampled answers and rewards are written to the run log (and
            ``grpo_samples.jsonl`` in the work dir) every ``runner.log_interval`` iterations.
    """

    group_size: int = in_range(8, low=2, high=1024)
    temperature: float = in_range(1.0, low=0.0, low_open=True)
    top_p: float = in_range(1.0, low=0.0, high=1.0, low_open=True)
    max_new_tokens: int = in_range(64, low=1)
    passes: int = in_range(1, low=1, high=1000)
    clip_eps: float = in_range(0.2, low=0.0, high=1.0, low_open=True, high_open=True)
    kl_coef: float = in_range(0.0, low=0.0)
    scale_rewards: bool = True
    loss_aggregation: str = "token"
    reward: dict[str, Any] = field(default_factory=lambda: {"name": "temporal_iou"})
    log_samples: int = in_range(2, low=0)


@dataclass
class TrainingSpec:
    """What ``vtg train`` optimises.

    Attributes:
        objective: ``sft`` (next-token cross-entropy on the answers of ``data.train``, the default)
            or ``grpo`` (RL post-training: :class:`GRPOSpec`, usually with ``vtg train --load-from``
            an SFT checkpoint).
        grpo: GRPO settings (read with ``objective: grpo``).
    """

    objective: str = "sft"
    grpo: GRPOSpec = field(default_factory=GRPOSpec)


@dataclass
class Recipe:
    """A whole experiment.

    Attributes:
        experiment_name: unique name of the experiment.
        description: one line on what the recipe is for.
        work_dir: where runs write checkpoints, logs and the resolved recipe.
        seed: global random seed.
        model: the model.
        data: the data.
        runner: mmengine Runner keyword arguments (train_cfg, optim_wrapper, hooks, ...).
        eval: generation and parsing of ``vtg eval``.
        training: the training objective (``sft`` or ``grpo``).
    """

    experiment_name: str = MISSING
    description: str = ""
    work_dir: str = "work_dirs/${experiment_name}"
    seed: int = in_range(42, low=0, high=SEED_MAX)
    model: ModelSpec = field(default_factory=ModelSpec)
    data: DataSpec = field(default_factory=DataSpec)
    runner: dict[str, Any] = field(default_factory=dict)
    eval: EvalSpec = field(default_factory=EvalSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
