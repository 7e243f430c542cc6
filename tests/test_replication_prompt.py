"""Replication of the original VTG-LLM's prompt text and tokenization (issue 19), against oracles
transcribed here from the original's code (github.com/gyxxyg/VTG-LLM), never by calling the code
under test:

* evaluation: ``evaluate.py`` ``generate`` (system prompt), ``conversation_video_batch.py``
  ``Chat.upload_video_without_audio`` / ``ask`` / ``answer`` / ``get_context_emb`` and
  ``Conversation.get_prompt`` (LLAMA_2), ``processors/video_processor.py`` ``load_video`` (uniform
  sampling and the frame-time sentence) and ``msg_to_token``;
* training: ``video_instruct_dataset.py`` ``preprocess_multimodal`` and ``preprocess_for_llama_v2``
  (one string, labels by the round rule);
* the tokenizer: the original's ``LlamaTokenizer.from_pretrained(..., use_fast=False)``
  (transformers 4.36), here a SentencePiece model trained in the test with LLaMA's trainer
  settings, loaded the way ``hf_causal_lm`` loads it with ``use_fast: false``, for both values of
  the ``legacy`` flag of its ``tokenizer_config.json``;
* ``data.eval_sampling: uniform_vtgllm`` against the original's float formula;
* the synthetic ``make run`` recipe keeps its token ids (modern defaults unchanged).
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sentencepiece")
pytest.importorskip("google.protobuf")

from vtgcore.data.prompts import eval_prompt  # noqa: E402
from vtgcore.data.video import sample_indices, vtgllm_frame_times  # noqa: E402
from vtgcore.processor import IGNORE_INDEX, VTGLLM_EVAL_SYSTEM, PromptConfig, VideoLLMProcessor  # noqa: E402
from vtgcore_plugins.llms.hf_causal_lm import _slow_llama_tokenizer  # noqa: E402
from vtgcore_plugins.time_codecs.absolute_time_tokens import AbsoluteTimeTokens  # noqa: E402

TIME_STR = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]
SPECIAL_TIME_TOKENS = [f"<TIME_{name}>" for name in TIME_STR] + ["<TIME_DOT>"]
IMAGE = "<ImageHere>"
K = 256
EVAL_SYSTEM = ("You are able to understand the visual content that the user provides. "
               "Follow the instructions carefully and explain your answers in detail.")  # evaluate.py
MR_PROMPT = ("Find the video segment that corresponds to the given textual query '{}' and determine its "
             "start and end seconds.")  # prompts/mr.txt


# ---------------------------------------------------------------------------------------------
# the tokenizer: a tiny SentencePiece model trained with LLaMA's settings


CORPUS = [
    "[INST] <<SYS>> You are able to understand the visual content that the user provides. </SYS>>",
    "Follow the instructions carefully and explain your answers in detail. [/INST]",
    "<Video> </Video> The video contains 96 frames sampled at 0.0, 2.2, 4.4, 6.6 seconds.",
    "Find the video segment that corresponds to the given textual query and determine its start and end seconds.",
    "a person opens the door of the kitchen. 12.3 - 15.0 seconds, significance score: 3.5.",
    "Detect and report the start and end time of the event in the video, with a short description.",
]


def _spm_folder(root: Path, legacy: bool) -> Path:
    import sentencepiece as spm

    folder = root / f"llama_legacy_{legacy}"
    folder.mkdir()
    corpus = root / f"corpus_{legacy}.txt"
    corpus.write_text("\n".join(CORPUS * 10), encoding="utf-8")
    # LLaMA's trainer_spec: BPE, digits split, byte fallback, no normalisation, spaces kept,
    # dummy prefix on, <unk>=0 <s>=1 </s>=2, no pad
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(folder / "tokenizer"), vocab_size=400, model_type="bpe",
        character_coverage=1.0, byte_fallback=True, split_digits=True, add_dummy_prefix=True,
        remove_extra_whitespaces=False, normalization_rule_name="identity", allow_whitespace_only_pieces=True,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1, minloglevel=2)
    (folder / "tokenizer.vocab").unlink()
    config = {"tokenizer_class": "LlamaTokenizer", "add_bos_token": True, "add_eos_token": False,
              "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": None,
              "clean_up_tokenization_spaces": False, "legacy": legacy}
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module", params=[True, False], ids=["legacy", "non_legacy"])
def folder(request, tmp_path_factory):
    return _spm_folder(tmp_path_factory.mktemp("spm"), request.param)


def original_tokenizer(folder: Path):
    """``vtgllm.py``: the slow tokenizer, pad = unk, ``<ImageHere>`` added as a special token, then
    (``from_config``) the 11 time tokens with ``add_tokens``."""
    tok = _slow_llama_tokenizer(str(folder))
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token
    tok.add_tokens([IMAGE], special_tokens=True)
    tok.add_tokens(SPECIAL_TIME_TOKENS)
    return tok


def vtgcore_processor(folder: Path, system: str) -> VideoLLMProcessor:
    """vtgcore's processor under the replication settings, its tokenizer grown as ``VideoLLM``
    grows it (the codec's tokens, then the video token as a special token)."""
    tok = _slow_llama_tokenizer(str(folder))
    codec = AbsoluteTimeTokens(integer_digits=4, fixed_format=True)
    tok.add_tokens(codec.special_tokens())
    tok.add_tokens(["<video>"], special_tokens=True)
    prompt = PromptConfig(system=system, layout="vtgllm", video_template="<Video>{video}</Video>",
                          max_length=4096)
    return VideoLLMProcessor(tok, codec, K, video_token="<video>", prompt=prompt)


# ---------------------------------------------------------------------------------------------
# the original's text, transcribed


def original_indices(vlen: int, n_frms: int = 96) -> list[int]:
    n = min(n_frms, vlen)
    return np.arange(0, vlen, vlen / n).astype(int).tolist()


def original_msg(indices: list[int], fps: float) -> str:
    sec = ", ".join([str(round(f / fps, 1)) for f in indices])
    return f"The video contains {len(indices)} frames sampled at {sec} seconds. "


def number_to_token(number: str) -> str:
    """``conversation_video_batch.py`` ``number_to_token`` (v3, with the left pad to 6)."""
    res: list[str] = []
    for i, digit in enumerate(number):
        if digit == "." and i < 4:
            res = ["<TIME_ZERO>"] * (4 - i) + res
        if digit == ".":
            res += [SPECIAL_TIME_TOKENS[-1]]
        else:
            res += [SPECIAL_TIME_TOKENS[int(digit)]]
    if "<TIME_DOT>" not in res:
        res += ["<TIME_DOT>", "<TIME_ZERO>"]
    if len(res) < 6:
        res = ["<TIME_ZERO>"] * (6 - len(res)) + res
    return "".join(res[:6])


def msg_to_token(msg: str) -> str:
    parts = msg.split("at")
    matches = re.findall(r"[0-9]+\.?[0-9]*", parts[1])
    replacements = {match: number_to_token(match) for match in matches}
    for match in matches:
        parts[1] = parts[1].replace(match, replacements[match], 1)
    return "at".join(parts)


def llama2_get_prompt(system: str, messages: list[list]) -> str:
    """``Conversation.get_prompt``, SeparatorStyle.LLAMA_2, sep ``<s>``, sep2 ``</s>``."""
    wrap_sys = lambda msg: f"<<SYS>>\n{msg}\n<</SYS>>\n\n"  # noqa: E731
    wrap_inst = lambda msg: f"[INST] {msg} [/INST]"  # noqa: E731
    ret = ""
    for i, (role, message) in enumerate(messages):
        if message:
            if i == 0:
                message = wrap_sys(system) + message
            if i % 2 == 0:
                ret += "<s>" + wrap_inst(message)
            else:
                ret += " " + message + " " + "</s>"
    return ret.lstrip("<s>")


def original_eval_ids(tok, vlen: int, fps: float, query: str) -> list:
    """``evaluate.py`` with ``--task tvg``: the ids ``get_context_emb`` embeds, ``"VIDEO"`` x 256
    where it puts the video embeddings."""
    msg = msg_to_token(original_msg(original_indices(vlen), fps))
    messages = [["USER", "<Video><ImageHere></Video> " + msg]]   # upload_video_without_audio
    messages[-1][1] = " ".join([messages[-1][1], MR_PROMPT.format(query.strip("."))])  # ask
    messages.append(["ASSISTANT", None])                           # answer
    prompt = llama2_get_prompt(EVAL_SYSTEM, messages)
    segs = prompt.split(IMAGE)
    seg_ids = [tok(seg, add_special_tokens=i == 0).input_ids for i, seg in enumerate(segs)]
    return seg_ids[0] + ["VIDEO"] * K + seg_ids[1]


def original_train_ids(tok, vlen: int, fps: float, qa: list[dict], max_txt_len: int = 2048):
    """``Video_Instruct_Dataset.__getitem__`` (special_time_token, strict_video_token_num 256) with
    the uniform indices, then ``preprocess_for_llama_v2``."""
    msg = msg_to_token(original_msg(original_indices(vlen), fps))
    qa = copy.deepcopy(qa)
    qa[0]["q"] = "<Video>" + IMAGE * K + "</Video> " + msg + qa[0]["q"]
    messages = []
    for turn in qa:
        messages += [["USER", turn["q"]], ["ASSISTANT", turn["a"]]]
    conversation = llama2_get_prompt(" ", messages)
    input_ids = tok(conversation, max_length=max_txt_len, truncation=True).input_ids
    target = list(input_ids)
    sep = "[/INST] "
    cur_len = 1
    target[:cur_len] = [IGNORE_INDEX]
    for rou in conversation.split("</s>"):
        if rou == "":
            break
        parts = rou.split(sep)
        if len(parts) != 2:
            break
        parts[0] += sep
        round_len = len(tok(rou).input_ids)
        instruction_len = len(tok(parts[0]).input_ids) - 2
        target[cur_len: cur_len + instruction_len] = [IGNORE_INDEX] * len(target[cur_len: cur_len + instruction_len])
        cur_len += round_len
    target[cur_len:] = [IGNORE_INDEX] * len(target[cur_len:])
    return input_ids, target


def _as_tokens(tok, ids: list, video_id=None) -> list[str]:
    """Ids as token strings (the added tokens get different ids in the two tokenizers: the
    original adds ``<ImageHere>`` before the time tokens, vtgcore the video token after them)."""
    return ["VIDEO" if i == "VIDEO" or i == video_id else tok.convert_ids_to_tokens(int(i)) for i in ids]


def _check_same_ids(orig_tok, orig_ids, proc, ids):
    ours = _as_tokens(proc.tokenizer, ids, proc.video_token_id)
    theirs = _as_tokens(orig_tok, orig_ids, orig_tok.convert_tokens_to_ids(IMAGE))
    assert ours == theirs
    # the base vocabulary's ids themselves agree (only the added tokens are numbered differently)
    base = orig_tok.sp_model.get_piece_size()
    assert [i for i in ids if i < base] == [i for i in orig_ids if i != "VIDEO" and i < base]


# ---------------------------------------------------------------------------------------------
# evaluation


@pytest.mark.parametrize("vlen,fps,query", [
    (208, 6.0, "a person opens the door."),          # 208: one of the lengths where the samplings differ
    (1000, 30000 / 1001, "person turns on the light"),
    (50, 25.0, "someone is cooking at the stove."),  # fewer frames than 96
])
def test_eval_prompt_ids_match_the_original(folder, vlen, fps, query):
    orig_tok = original_tokenizer(folder)
    expected = original_eval_ids(orig_tok, vlen, fps, query)
    proc = vtgcore_processor(folder, VTGLLM_EVAL_SYSTEM)
    times = vtgllm_frame_times(sample_indices(vlen, 96, "uniform_vtgllm"), fps)
    ids, labels = proc.encode_conversation([{"q": eval_prompt("mr", query)}], times, add_generation_prompt=True)
    assert ids[0] == orig_tok.bos_token_id and ids.count(proc.video_token_id) == K
    _check_same_ids(orig_tok, expected, proc, ids)
    assert set(labels) == {IGNORE_INDEX}


def test_eval_system_prompt_and_the_modern_text_differ(folder):
    """The constant is the original's evaluation system prompt; without the replication layout
    the text differs (no trailing space, no double space, no wrapper): the settings matter."""
    assert VTGLLM_EVAL_SYSTEM == EVAL_SYSTEM
    orig_tok = original_tokenizer(folder)
    expected = original_eval_ids(orig_tok, 208, 6.0, "a person opens the door")
    proc = vtgcore_processor(folder, VTGLLM_EVAL_SYSTEM)
    proc.prompt = PromptConfig(system=VTGLLM_EVAL_SYSTEM, max_length=4096)
    times = vtgllm_frame_times(sample_indices(208, 96, "uniform_vtgllm"), 6.0)
    ids, _ = proc.encode_conversation([{"q": eval_prompt("mr", "a person opens the door")}], times,
                                      add_generation_prompt=True)
    assert _as_tokens(proc.tokenizer, ids, proc.video_token_id) != _as_tokens(
        orig_tok, expected, orig_tok.convert_tokens_to_ids(IMAGE))


def test_frame_message_trailing_space():
    from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    codec = AbsoluteTimeTokens()
    tok.add_tokens(codec.special_tokens())
    tok.add_tokens(["<video>"], special_tokens=True)
    modern = VideoLLMProcessor(tok, codec, 4)
    replica = VideoLLMProcessor(tok, codec, 4, prompt=PromptConfig(layout="vtgllm"))
    assert modern.frame_message([0.0, 1.5]).endswith(" seconds.")
    assert replica.frame_message([0.0, 1.5]) == modern.frame_message([0.0, 1.5]) + " "


# ---------------------------------------------------------------------------------------------
# training


def test_training_ids_and_labels_match_the_original(folder):
    orig_tok = original_tokenizer(folder)
    qa = [{"q": "Find the video segment that corresponds to the given textual query 'a person opens the door' "
                "and determine its start and end seconds.",
           "a": "12.3 - 15.0 seconds."},
          {"q": "Detect and report the start and end time of the event in the video.",
           "a": "2.2 - 4.4 seconds, a person opens the door."}]
    # the VTG-IT answers' times are time tokens in the annotation; vtgcore's are <time> marks
    orig_qa = [{"q": t["q"], "a": re.sub(r"[0-9]+\.[0-9]", lambda m: number_to_token(m.group(0)), t["a"])}
               for t in qa]
    expected_ids, expected_labels = original_train_ids(orig_tok, 500, 25.0, orig_qa)
    ours_qa = [{"q": t["q"], "a": re.sub(r"[0-9]+\.[0-9]", lambda m: f"<time>{m.group(0)}</time>", t["a"])}
               for t in qa]
    proc = vtgcore_processor(folder, " ")
    times = vtgllm_frame_times(sample_indices(500, 96, "uniform_vtgllm"), 25.0)
    ids, labels = proc.encode_conversation(ours_qa, times)
    image_id = orig_tok.convert_tokens_to_ids(IMAGE)
    _check_same_ids(orig_tok, ["VIDEO" if i == image_id else i for i in expected_ids], proc, ids)
    supervised = [(k, proc.tokenizer.convert_ids_to_tokens(i)) for k, i in enumerate(labels) if i != IGNORE_INDEX]
    expected = [(k, orig_tok.convert_ids_to_tokens(i)) for k, i in enumerate(expected_labels) if i != IGNORE_INDEX]
    assert supervised == expected and supervised and supervised[-1][1] == "</s>"


# ---------------------------------------------------------------------------------------------
# the slow tokenizer option


def test_hf_causal_lm_use_fast_false_loads_the_slow_tokenizer(folder):
    from vtgcore.errors import VTGError
    from vtgcore_plugins.llms.hf_causal_lm import HFCausalLM
    from vtgcore_plugins.llms._llama_slow_tokenizer import LlamaSlowTokenizer

    llm = HFCausalLM(model_config={"model_type": "llama", "hidden_size": 16, "intermediate_size": 32,
                                   "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2},
                     tokenizer_path=str(folder), use_fast=False)
    assert isinstance(llm.tokenizer, LlamaSlowTokenizer)
    assert llm.tokenizer.pad_token_id == llm.tokenizer.unk_token_id == 0
    assert llm.tokenizer("Find the").input_ids[0] == 1
    assert llm.tokenizer.legacy == ("legacy_True" in folder.name)
    # the tiny in-memory tokenizer has no slow form: the setting is not read (paper recipes at tiny widths)
    tiny = HFCausalLM(model_config={"model_type": "llama", "hidden_size": 16, "intermediate_size": 32,
                                    "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 2},
                      tokenizer="tiny", use_fast=False)
    assert not isinstance(tiny.tokenizer, LlamaSlowTokenizer)
    with pytest.raises(VTGError, match="tokenizer"):
        HFCausalLM(model_config={"model_type": "llama"}, tokenizer_path=str(folder.parent / "absent"), use_fast=False)


# ---------------------------------------------------------------------------------------------
# sampling


def test_uniform_vtgllm_is_the_originals_float_formula():
    for vlen in range(96, 3001):
        step = vlen / 96                                 # np.arange fills start + i * step
        expected = [int(i * step) for i in range(96)]
        assert sample_indices(vlen, 96, "uniform_vtgllm") == expected, vlen
        assert sample_indices(vlen, 96, "uniform") == [i * vlen // 96 for i in range(96)], vlen
    assert sample_indices(208, 96, "uniform_vtgllm")[54] == 116 and sample_indices(208, 96, "uniform")[54] == 117
    differ = [v for v in range(96, 20000)
              if sample_indices(v, 96, "uniform") != sample_indices(v, 96, "uniform_vtgllm")]
    assert len(differ) == 145 and differ[0] == 208
    assert sample_indices(50, 96, "uniform_vtgllm") == list(range(50))


# ---------------------------------------------------------------------------------------------
# the modern defaults keep their ids


SYNTH_PIN = {"False-False": "4702fe79f98b0aa1", "False-True": "c5457ee292e207d7",
             "True-False": "be3092851d4e8460", "True-True": "4ed8864255f24683"}


def test_synth_tiny_token_ids_are_unchanged():
    """recipes/vtgllm/synth_tiny.yaml (``make run``): the hashes were taken with the processor
    before the replication settings were added."""
    from vtgcore import build_model, load_recipe

    root = Path(__file__).resolve().parents[1]
    _, proc = build_model(load_recipe(root / "recipes" / "vtgllm" / "synth_tiny.yaml"))
    assert proc.prompt.layout == "compact" and proc.prompt.video_template == "{video}"
    turns = [{"q": "<video> Find the moment: a red ball rolls left.", "a": "<time>1.5</time> - <time>4.2</time> seconds."},
             {"q": "And then?", "a": "<time>12</time> seconds, significance score: 3.5."}]
    times = [k * 0.5 for k in range(16)]
    got = {}
    for in_prompt in (False, True):
        proc.prompt.timestamps_in_prompt = in_prompt
        for gen in (False, True):
            ids, labels = proc.encode_conversation(turns, times, add_generation_prompt=gen)
            got[f"{in_prompt}-{gen}"] = hashlib.sha256(json.dumps([ids, labels]).encode()).hexdigest()[:16]
    assert got == SYNTH_PIN
