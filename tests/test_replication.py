"""Replication of the original VTG-LLM's evaluation path (issue 19), each against an oracle written
here from the original's code (``vtgllm-original.md``), never by calling the code under test.

* the ``legacy_swapped`` test-time interpolation of the absolute-second table (``vtgllm.py``
  ``from_config``: a stack of untrained rows, filled in place);
* the frame times of ``data.frame_times: vtgllm`` (``round(idx / avg_fps, 1)``) and their table rows
  (``round(float(text))``), and float32 times that must not lose a tenth;
* the ``--legacy-parser`` path: generated ids decoded as the original's slow tokenizer writes them,
  then ``utils/format_{tvg,dvc,vhd}.py``.
"""

from __future__ import annotations

import torch

from vtgcore_plugins.time_embeddings.abs_second_table import fill_untrained_rows


# ---------------------------------------------------------------------------------------------
# 1. legacy_swapped interpolation


def original_interpolation(weights: torch.Tensor) -> torch.Tensor:
    """The original's loop, transcribed: push untrained rows with the current left margin, pop them
    (last first) when a trained row comes, pop the rest with right = -1, then fill in that order,
    in place."""
    weights = weights.clone()
    all_zero = (weights == 0).all(dim=1).int()
    bounds, stack, left_margin = [], [], 0
    for i in range(len(all_zero)):
        if all_zero[i] == 1:
            stack.append([i, left_margin])
        else:
            while len(stack):
                pre = stack.pop()
                pre.append(i)
                bounds.append(pre)
            left_margin = i
    while len(stack):
        pre = stack.pop()
        pre.append(-1)
        bounds.append(pre)
    for idx, left, right in bounds:
        lw, rw = weights[left], weights[right]
        weights[idx] = lw * (idx - left) / (right - left) + rw * (right - idx) / (right - left)
    return weights


def _table(rows: int, trained: list[int], dim: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    table = torch.zeros(rows, dim)
    table[trained] = torch.randn(len(trained), dim, generator=g)
    return table


def test_legacy_swapped_matches_the_original_loop_exactly():
    cases = [
        (10, [2, 6]),                       # leading (row 0 untrained), interior, trailing
        (12, [0, 3, 4, 9]),                 # row 0 trained, adjacent trained rows, trailing
        (9, [1, 8]),                        # last row trained: no trailing run
        (30, [5, 6, 7, 20]),                # long trailing run
        (16, [15]),                         # only the last row trained: every row is leading
        (16, [0]),                          # only row 0 trained: every other row trails
    ]
    for seed, (rows, trained) in enumerate(cases):
        table = _table(rows, trained, seed=seed)
        filled = fill_untrained_rows(table, "legacy_swapped")
        assert torch.equal(filled, original_interpolation(table)), (rows, trained)
        assert torch.equal(filled[trained], table[trained])


def test_legacy_swapped_row_501_of_a_table_trained_to_500():
    table = _table(8192, list(range(501)), dim=16, seed=7)
    filled = fill_untrained_rows(table, "legacy_swapped")
    expected = original_interpolation(table)
    assert torch.equal(filled, expected)
    ratio = filled[501] / table[500]
    # the original: row 8191 = row 500 * 7691 / -501, then row 501 = row 500 * 1 / -501 + row 8191 * -502 / -501
    assert torch.allclose(ratio, torch.full_like(ratio, -1 / 501 + (7691 / -501) * (-502 / -501)), rtol=1e-4)
    assert round(float(ratio.mean()), 1) == -15.4
    # interior rows need no trailing row: a table trained at 0 and 500 only
    sparse = _table(8192, [0, 500, 8191], dim=4, seed=3)
    filled = fill_untrained_rows(sparse, "legacy_swapped")
    assert torch.equal(filled, original_interpolation(sparse))
    s = 100  # swapped weights: (s - left) / (right - left) on the left row
    torch.testing.assert_close(filled[s], sparse[0] * s / 500 + sparse[500] * (500 - s) / 500)


def test_linear_mode_is_unchanged_by_the_legacy_fix():
    table = _table(10, [2, 6], dim=2, seed=1)
    filled = fill_untrained_rows(table, "linear")
    r2, r6 = table[2], table[6]
    for s in range(10):
        expected = r2 if s <= 2 else r6 if s >= 6 else r2 * (6 - s) / 4 + r6 * (s - 2) / 4
        torch.testing.assert_close(filled[s], expected)


# ---------------------------------------------------------------------------------------------
# 2. frame times

from pathlib import Path  # noqa: E402
from types import SimpleNamespace  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from vtgcore.data.dataset import FrameConfig, VideoCollator, VideoConversationDataset  # noqa: E402
from vtgcore.data.formats import EvalItem  # noqa: E402
from vtgcore.data.pattern_videos import write_test_video  # noqa: E402
from vtgcore.data.video import _decord_available, seconds_list  # noqa: E402
from vtgcore_plugins.time_embeddings.abs_second_table import AbsSecondTable  # noqa: E402

READERS = ["pyav"] + (["decord"] if _decord_available() else [])
DIGIT_TOKENS = ["<TIME_ZERO>", "<TIME_ONE>", "<TIME_TWO>", "<TIME_THREE>", "<TIME_FOUR>", "<TIME_FIVE>",
                "<TIME_SIX>", "<TIME_SEVEN>", "<TIME_EIGHT>", "<TIME_NINE>"]
# (fps, frames): 6 fps (YouCook2 / ActivityNet after re-encoding), 25, 29.97 as 2997/100 and NTSC 30000/1001
VIDEOS = [(6.0, 300), (6.0, 1000), (25.0, 300), (25.0, 1000), (29.97, 1000), (30000 / 1001, 577),
          (30000 / 1001, 2000), (25.0, 50), (6.0, 487)]


def original_number_to_token(number: str) -> str:
    """``number_to_token`` (v3) of the original, transcribed: left-pad the integer part to 4 digits
    when the dot comes early, append ``.0`` without a dot, keep 6 tokens."""
    res: list[str] = []
    for i, ch in enumerate(number):
        if ch == "." and i < 4:
            res = ["<TIME_ZERO>"] * (4 - i) + res
        res.append("<TIME_DOT>" if ch == "." else DIGIT_TOKENS[int(ch)])
    if "<TIME_DOT>" not in res:
        res += ["<TIME_DOT>", "<TIME_ZERO>"]
    return "".join(res[:6])


def original_frame_times(path: Path, n_frms: int = 96) -> tuple[list[str], list[int]]:
    """``load_video(..., sampling="uniform", return_msg=True)`` of the original: the prompt's
    time strings and the absolute-time rows ``round(float(t))`` built from them."""
    if _decord_available():
        import decord

        vr = decord.VideoReader(str(path))
        vlen, fps = len(vr), float(vr.get_avg_fps())
    else:  # decord's get_avg_fps is the stream's avg_frame_rate
        import av

        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            vlen, fps = sum(1 for p in container.demux(stream) if p.size), float(stream.average_rate)
    n = min(n_frms, vlen)
    indices = np.arange(0, vlen, vlen / n).astype(int).tolist()
    texts = [str(round(f / fps, 1)) for f in indices]
    return texts, [round(float(t.strip())) for t in texts]


@pytest.fixture(scope="module")
def fps_videos(tmp_path_factory):
    root = tmp_path_factory.mktemp("fps")
    for k, (fps, count) in enumerate(VIDEOS):
        write_test_video(root / f"v{k}.mp4", num_frames=count, fps=fps, size=(32, 32), gop_size=48)
    write_test_video(root / "tenths.mp4", num_frames=40, fps=10.0, size=(32, 32))
    return root


@pytest.fixture(scope="module")
def tiny96(tiny_recipe_path_module):
    """The tiny model with room for a 96-frame prompt."""
    from vtgcore import build_model, load_recipe

    return build_model(load_recipe(tiny_recipe_path_module, ["model.prompt.max_length=4096"]))


@pytest.fixture(scope="module")
def tiny_recipe_path_module():
    return Path(__file__).resolve().parents[1] / "recipes" / "debug" / "tiny.yaml"


def _sample(root: Path, name: str, reader: str, frame_times: str, num_frames: int = 96, **kw):
    item = EvalItem(id="q", video=name, task="mr", query="something happens", windows=[(0.0, 1.0)])
    frames = FrameConfig(num_frames=num_frames, image_size=32, reader=reader, frame_times=frame_times)
    return VideoConversationDataset([item], frames, video_root=root, **kw)[0]


def _prompt_times(tokenizer, input_ids) -> list[str]:
    """The time-token strings of the frame message, read back from the prompt's ids."""
    text = tokenizer.decode(input_ids, skip_special_tokens=False)
    part = text.split("frames sampled at")[1].split("seconds.")[0]
    return [t.strip() for t in part.split(",")]


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("k", range(len(VIDEOS)), ids=[f"{f:.5g}fps-{n}" for f, n in VIDEOS])
def test_vtgllm_frame_times_prompt_and_table_rows(fps_videos, tiny96, reader, k):
    model, proc = tiny96
    texts, rows = original_frame_times(fps_videos / f"v{k}.mp4")
    sample = _sample(fps_videos, f"v{k}.mp4", reader, "vtgllm")
    assert sample["timestamps"].dtype == torch.float64
    assert sample["timestamps"].tolist() == [float(t) for t in texts]
    batch = VideoCollator(proc, add_generation_prompt=True)([sample])
    assert _prompt_times(model.tokenizer, batch["input_ids"][0]) == [original_number_to_token(t) for t in texts]
    table = AbsSecondTable(2, max_seconds=8192)
    assert table.seconds_index(batch["timestamps"])[0].tolist() == rows
    assert model.time_embedding.seconds_index(batch["timestamps"])[0].tolist() == rows


def test_container_times_differ_from_the_original_as_measured(fps_videos):
    """``container`` (the default) keeps each frame's own time, written truncated: at 6 fps the
    frames at k/6 s with k % 6 in (1, 4) are a tenth lower than the original's rounded times, the
    rows agree; at 29.97 fps some rows differ. Only ``vtgllm`` replicates."""
    from vtgcore_plugins.time_codecs.absolute_time_tokens import AbsoluteTimeTokens

    codec = AbsoluteTimeTokens()
    counts = {}
    for k in (1, 4):
        texts, rows = original_frame_times(fps_videos / f"v{k}.mp4")
        times = _sample(fps_videos, f"v{k}.mp4", "pyav", "container")["timestamps"].tolist()
        prompt = sum(codec.encode(t) != original_number_to_token(o) for t, o in zip(times, texts))
        table = sum(round(t) != r for t, r in zip(times, rows))
        counts[VIDEOS[k][0]] = (prompt, table)
    indices = [i * 1000 // 96 for i in range(96)]
    assert counts[6.0] == (sum(i % 6 in (1, 4) for i in indices), 0) and counts[6.0][0] > 0
    assert counts[29.97][1] > 0


def test_float32_times_keep_their_tenths():
    assert seconds_list(torch.tensor([0.7, 2.3, 12.3, 1234.5], dtype=torch.float32)) == [0.7, 2.3, 12.3, 1234.5]
    assert seconds_list(np.asarray([0.7, 2.3], dtype=np.float32)) == [0.7, 2.3]
    exact = [0.6999999, 1 / 3]
    assert seconds_list(torch.tensor(exact, dtype=torch.float64)) == exact  # float64 is taken as it is
    # the float32 values really are below the tenth: a truncating codec wrote 0.6 and 2.2 from them
    from vtgcore_plugins.time_codecs.absolute_time_tokens import AbsoluteTimeTokens

    codec = AbsoluteTimeTokens()
    f32 = torch.tensor([0.7, 2.3], dtype=torch.float32).tolist()
    assert [codec.encode(t) for t in f32] == [original_number_to_token("0.6"), original_number_to_token("2.2")]
    assert [codec.encode(t) for t in seconds_list(torch.tensor([0.7, 2.3]))] == \
        [original_number_to_token("0.7"), original_number_to_token("2.3")]


@pytest.mark.parametrize("reader", READERS)
def test_container_times_0_7_and_2_3_reach_the_prompt_intact(fps_videos, tiny96, reader):
    """A 10 fps video: frames 7 and 23 are at 0.7 s and 2.3 s (decord reports them as float32)."""
    from vtgcore.mm.model import VideoDataPreprocessor

    model, proc = tiny96
    sample = _sample(fps_videos, "tenths.mp4", reader, "container", num_frames=40)
    assert sample["timestamps"].tolist() == [k / 10 for k in range(40)]
    expected = [original_number_to_token(str(k / 10)) for k in range(40)]
    batch = VideoCollator(proc, add_generation_prompt=True)([sample])
    assert _prompt_times(model.tokenizer, batch["input_ids"][0]) == expected
    # the mmengine path tokenizes in the data preprocessor, from the collated batch
    pre = VideoDataPreprocessor()
    pre.processor = proc
    data = VideoCollator()([sample])
    out = pre(data, training=False)["data_samples"]
    assert torch.equal(out["input_ids"], batch["input_ids"])
    del data["frame_seconds"]  # a batch without the float64 list: read back from the float32 tensor
    assert torch.equal(pre(data, training=False)["data_samples"]["input_ids"], batch["input_ids"])


def test_feature_cache_stores_the_chosen_frame_times(fps_videos, tmp_path):
    from vtgcore.data.feature_cache import FeatureCache
    from vtgcore.errors import VTGError

    texts, _ = original_frame_times(fps_videos / "v0.mp4")
    caches = {mode: FeatureCache(tmp_path, None, None, image_size=32, reader="pyav", frame_times=mode)
              for mode in ("container", "vtgllm")}
    assert caches["container"].key != caches["vtgllm"].key
    sample = _sample(fps_videos, "v0.mp4", "pyav", "vtgllm", feature_cache=caches["vtgllm"])
    assert sample["timestamps"].dtype == torch.float64
    assert sample["timestamps"].tolist() == [float(t) for t in texts]
    with pytest.raises(VTGError, match="frame_times"):
        _sample(fps_videos, "v0.mp4", "pyav", "vtgllm", feature_cache=caches["container"])


def test_recipe_key_frame_times(tiny_recipe_path):
    from vtgcore.config.loader import load_recipe
    from vtgcore.errors import RecipeError

    encoder = SimpleNamespace(image_size=32, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    assert FrameConfig.for_eval(load_recipe(tiny_recipe_path), encoder).frame_times == "container"
    recipe = load_recipe(tiny_recipe_path, ["data.frame_times=vtgllm"])
    assert FrameConfig.for_eval(recipe, encoder).frame_times == "vtgllm"
    with pytest.raises(RecipeError, match="data.frame_times is 'decord'; allowed: container, vtgllm"):
        load_recipe(tiny_recipe_path, ["data.frame_times=decord"])
    with pytest.raises(ValueError, match="frame_times"):
        FrameConfig(frame_times="pts")


# ---------------------------------------------------------------------------------------------
# 3. --legacy-parser reads the original's text

import random  # noqa: E402
import re  # noqa: E402

from vtgcore.data.prompts import dvc_answer, hd_answer, mr_answer  # noqa: E402
from vtgcore.data.tiny_tokenizers import build_tiny_tokenizer  # noqa: E402
from vtgcore.processor import format_times, time_mark  # noqa: E402

TIME_TOKENS = DIGIT_TOKENS + ["<TIME_DOT>"]
_NAMES = ["ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE"]


def original_answer_text(ids: list[int], tok) -> str:
    """``Chat.answer`` with the slow LLaMA tokenizer (transformers 4.41): drop a leading unk, then a
    leading bos; ``decode`` with special tokens: added (non-special) tokens are pieces of their own,
    runs of other tokens go through ``convert_tokens_to_string`` (SentencePiece: no leading space),
    pieces joined by " "; then split on "</s>", keep the part after the last "ASSISTANT:", strip."""
    if ids and ids[0] == tok.unk_token_id:
        ids = ids[1:]
    if ids and ids[0] == tok.bos_token_id:
        ids = ids[1:]
    sub_texts, current = [], []
    for token in tok.convert_ids_to_tokens(ids):
        if token in TIME_TOKENS:
            if current:
                string = tok.convert_tokens_to_string(current)
                string = string[1:] if string.startswith(" ") else string
                if len(string) > 0:
                    sub_texts.append(string)
                current = []
            sub_texts.append(token)
        else:
            current.append(token)
    if current:
        string = tok.convert_tokens_to_string(current)
        sub_texts.append(string[1:] if string.startswith(" ") else string)
    text = " ".join(sub_texts)
    return text.split("</s>")[0].split("ASSISTANT:")[-1].strip()


class OriginalCrash(Exception):
    """Where the original raises or stops in pdb."""


def original_special_time_token(paragraph: str) -> str:
    """``*_special_time_token`` of utils/format_*.py: token names to digits, spaces out of digit runs."""
    for i in range(10):
        paragraph = paragraph.replace(f"<TIME_{_NAMES[i]}>", str(i))
    paragraph = paragraph.replace("<TIME_DOT>", ".")
    return re.sub(r"\d[\d\s]*(\.[\s\d]*\d)*", lambda m: m.group(0).replace(" ", ""), paragraph)


def original_tvg(text: str) -> list[list[float]]:
    """utils/format_tvg.py ``format_tvg_output``."""
    paragraph = original_special_time_token(text).lower()
    sentences = re.split(r"[!?\n]", paragraph)
    keywords = ["starts", "ends", "happens in", "start time", "end time", "start", "end", "happen"]
    candidates = [s for s in sentences if any(k in s for k in keywords)]
    timestamps: list = []
    matches = re.findall(r"(\d+\.*\d*)\s*-\s*(\d+\.*\d*)", paragraph)
    if matches:
        try:
            timestamps = [[float(a), float(b)] for a, b in matches]
        except ValueError:
            raise OriginalCrash("float") from None
    time_in_sec = None
    if not timestamps:
        times = []
        for sentence in candidates:
            found = re.findall(r"\b(\d+\.\d+\b|\b\d+)\b", sentence)
            if found:
                time_in_sec = float(found[0])
                times.append(time_in_sec)
        times = times[:len(times) // 2 * 2]
        timestamps = [(times[i], times[i + 1]) for i in range(0, len(times), 2)]
    if not timestamps:
        times = []
        for sentence in candidates:
            found = re.findall(r"\b((\d{1,2}:\d{2}:\d{2}))\b", sentence)
            if not found:
                continue
            # found[0] is a tuple: neither count(':') branch runs, the last time_in_sec is appended
            if time_in_sec is None:
                raise OriginalCrash("UnboundLocalError")
            times.append(time_in_sec)
        times = times[:len(times) // 2 * 2]
        timestamps = [(times[i], times[i + 1]) for i in range(0, len(times), 2)]
    results = [[s, e] if e > s else [e, s] for s, e in timestamps]
    return results[:1]


def original_time_part(time_part: str) -> list[str]:
    """utils/format_dvc.py ``extract_time_part``."""
    radius = 20
    found = re.findall(r"\d+\.*\d*\s*-\s*\d+\.*\d*", time_part)
    if not found:
        if time_part.count(":") == 1:
            t = re.findall(r"\d+\.*\d*:\d+\.*\d*", time_part)[0]
            t = int(t.split(":")[0]) * 60 + int(t.split(":")[1])
            found = [f"{t - radius} - {t + radius}"] if t > radius else [f"{t} - {t + 2 * radius}"]
        elif time_part.count(":") == 2:
            start, end = re.findall(r"\d+\.*\d*:\d+\.*\d*", time_part)
            s = int(start.split(":")[0]) * 60 + int(start.split(":")[1])
            e = int(end.split(":")[0]) * 60 + int(end.split(":")[1])
            found = [f"{s} - {e}"]
    if not found:
        found = re.findall(r"\d+\.*\d*(?!\.)", time_part)
        if len(found) == 1:
            t = float(found[0])
            found = [f"{t - radius} - {t + radius}"] if t > radius else [f"{t} - {t + 2 * radius}"]
        elif len(found) == 2:
            found = [f"{found[0]} - {found[1]}"]
    return found


def original_dvc(caption: str) -> list[tuple[list[float], str]]:
    """utils/format_dvc.py ``format_dvc_output``."""
    paragraph = original_special_time_token(caption).lower()
    timestamps: list = []
    captions: list = []
    matches = re.findall(r"(\d+\.*\d*)\s*-\s*(\d+\.*\d*)", paragraph)
    strings = re.findall(r"(\d+\.*\d*\s*-\s*\d+\.*\d*)", paragraph)
    if matches:
        try:
            timestamps = [[float(a), float(b)] for a, b in matches]
        except ValueError:
            raise OriginalCrash("float") from None
        rest = paragraph
        for s in strings:
            rest = rest.replace(s, "\n")
        captions = rest.replace("seconds", "").split("\n")
    if not timestamps:
        ends = re.findall(r"(?:end(?:ing)? time: (\d+\.*\d*)(?:s| seconds)?)", paragraph, re.DOTALL | re.IGNORECASE)
        starts = re.findall(r"(?:start(?:ing)? time: (\d+\.*\d*)(?:s| seconds)?)", paragraph,
                            re.DOTALL | re.IGNORECASE)
        if starts and ends:
            timestamps = [[float(s), float(e)] for s, e in zip(starts, ends)]
            captions = re.findall(r"description: (.*)", paragraph) or re.findall(r"\*\s*(.*)", paragraph)
    if not timestamps and re.findall(r"start time (\d+\.*\d*), end time (\d+\.*\d*)", paragraph):
        raise OriginalCrash("pdb.set_trace()")
    captions = [c.strip().strip(", ").rstrip() for c in captions if len(c) > 5]
    n = min(len(timestamps), len(captions))
    timestamps, sents = timestamps[:n], captions[:n]
    if not timestamps:
        if "\n" in caption:
            caps = [c for c in caption.split("\n") if len(c) > 7]
        else:
            caps = [c + "." for c in caption.split(".") if len(c) > 7]
        for cap in caps:
            try:
                if not timestamps:
                    parts = [p.strip(",") for p in cap.split("seconds")]
                    found = original_time_part(parts[0])
                    if not found:
                        continue
                    time_part = found[0]
                    start = round(float(time_part.split("-")[0].strip()), 2)
                    end = round(float(time_part.split("-")[1].strip()), 2)
                    timestamps.append([start, end])
                    sents.append(parts[-1].strip())
            except Exception:
                continue
    return list(zip(timestamps, sents))


def original_vhd(text: str, duration: float) -> list[float]:
    """utils/format_vhd.py ``format_vhd_output``: the per-clip scores it writes."""
    output = original_special_time_token(text).lower().replace("th", " ")
    timestamps, scores = [], []
    if output.count("second") and output.count("score"):
        pieces = [d for d in re.split(r"[,\n]+", output) if "second" in d or "score" in d or ":" in d]
        for piece in pieces:
            if "score" in piece:
                found = re.findall(r"\b\d\.?\d?\b", piece)
                if found:
                    scores.append(float(found[-1]))
            else:
                found = re.findall(r"\b((\d{1,2}:\d{2}:\d{2}))\b|\b(\d+\.?\d+?\b|\b\d+)\b", piece)
                kept = [groups[-1] for groups in found if groups[-1] != ""]  # ':' in a tuple: never
                if kept:
                    timestamps.append(kept[-1])
    timestamps = [float(t) for t in timestamps]
    if len(timestamps) > 1:
        scores = (scores + [0.0] * len(timestamps))[:len(timestamps)]
    clip_num = int(duration / 2)
    total, count = np.zeros(clip_num), np.zeros(clip_num)
    for t, s in zip(timestamps, scores):
        if t > duration:
            continue
        clip = max(0, int((t - 1) / 2))
        if clip >= clip_num:
            raise OriginalCrash("IndexError")
        total[clip] += s
        count[clip] += 1
    return [0.0 if count[c] == 0 else float(total[c] / count[c]) for c in range(clip_num)]


WORDS = "the a red blue man woman dog cat ball opens closes walks runs jumps picks up puts down door car".split()


def _random_time(rng: random.Random, high: float) -> float:
    value = rng.uniform(0, high)
    return float(round(value)) if rng.random() < 0.5 else round(value, 1)  # half of them whole seconds


def _caption(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 6)))


def synthetic_answer(rng: random.Random, task: str, duration: float) -> str:
    """An answer with ``<time>`` markers in one of the forms a model writes."""
    if task == "mr":
        s, e = sorted((_random_time(rng, duration), _random_time(rng, duration)))
        form = rng.randrange(5)
        if form == 0:
            return mr_answer(s, e)
        if form == 1:
            return f"The given query happens in {time_mark(s)} - {time_mark(e)} seconds."
        if form == 2:  # reversed, and a second window
            return f"{time_mark(e)} - {time_mark(s)} seconds. Also {time_mark(s)} - {time_mark(e)} seconds."
        if form == 3:
            return f"The event starts at {time_mark(s)} seconds.\nIt ends at {time_mark(e)} seconds."
        return f"top {rng.randint(1, 3)} {time_mark(s)} - {time_mark(e)} seconds"
    if task == "dvc":
        n = rng.randint(1, 5)
        windows = [sorted((_random_time(rng, duration), _random_time(rng, duration))) for _ in range(n)]
        captions = [_caption(rng) for _ in range(n)]
        form = rng.randrange(4)
        if form == 0:
            return dvc_answer(windows, captions)
        if form == 1:
            return "Here are the events of the video. " + dvc_answer(windows, captions)
        if form == 2:
            return "\n".join(f"{time_mark(s)} - {time_mark(e)} seconds, {c}." for (s, e), c in zip(windows, captions))
        return " ".join(f"{c}, {time_mark(s)} - {time_mark(e)} seconds." for (s, e), c in zip(windows, captions))
    n = rng.randint(1, 8)
    times = sorted(_random_time(rng, duration * 1.1) for _ in range(n))
    scores = [float(rng.choice([1, 2, 3, 4])) if rng.random() < 0.5 else round(rng.uniform(0, 4), 1) for _ in times]
    form = rng.randrange(3)
    if form == 0:
        return hd_answer(times, scores)
    if form == 1:
        return ", ".join(f"{time_mark(t)} seconds, significance score: {s:g}" for t, s in zip(times, scores))
    return "\n".join(f"{time_mark(t)} seconds, saliency score: {s}" for t, s in zip(times, scores))


@pytest.fixture(scope="module")
def time_tokenizer():
    from vtgcore_plugins.time_codecs.absolute_time_tokens import AbsoluteTimeTokens

    tok = build_tiny_tokenizer()
    tok.add_tokens(TIME_TOKENS)
    return tok, AbsoluteTimeTokens()


class _Generator(torch.nn.Module):
    """Stands in for the model in ``generate_batch``: "generates" the given ids, padded after eos."""

    def __init__(self, rows: list[list[int]], tokenizer, codec) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.rows, self.tokenizer, self.time_codec = rows, tokenizer, codec

    def generate(self, frames, timestamps, input_ids, attention_mask, frame_mask=None, **kwargs):
        width = max(len(r) for r in self.rows)
        return torch.tensor([r + [self.tokenizer.pad_token_id] * (width - len(r)) for r in self.rows])


def _pipeline_predictions(task: str, answers: list[str], durations: list[float], tok, codec):
    """ids -> generate_batch rows -> score(legacy_parser=True) -> the prediction of every item."""
    from vtgcore.eval.evaluation import score
    from vtgcore.eval.generate import GenerationConfig, generate_batch

    ids = [tok.encode(format_times(a, codec), add_special_tokens=False) + [tok.eos_token_id] for a in answers]
    model = _Generator(ids, tok, codec)
    n = len(answers)
    batch = {"frames": torch.zeros(n, 1), "timestamps": torch.zeros(n, 1), "input_ids": torch.zeros(n, 1),
             "attention_mask": torch.zeros(n, 1), "frame_mask": torch.ones(n, 1)}
    outputs = generate_batch(model, batch, GenerationConfig())
    items = [EvalItem(id=f"{task}{i}", video=f"v{i}.mp4", task=task, query="q", duration=d,
                      windows=[(0.0, 2.0)], captions=["a cat"], saliency=[[4.0, 4.0, 4.0]], clip_ids=[0])
             for i, d in enumerate(durations)]
    rows = {item.id: {"id": item.id, "video": item.video, "duration": item.duration, **out}
            for item, out in zip(items, outputs)}
    _, predictions = score(task, items, rows, legacy_parser=True)
    return ids, items, predictions, outputs


def _expected(task: str, text: str, duration: float):
    """The original's prediction for one generated text, in the prediction-file form."""
    if task == "mr":
        return {"timestamp": original_tvg(text)}
    if task == "dvc":
        return [{"timestamp": list(w), "caption": c} for w, c in original_dvc(text)]
    return original_vhd(text, duration)


def _got(task: str, item, predictions):
    if task == "mr":
        return {"timestamp": predictions[item.id]["timestamp"]}
    if task == "dvc":
        return predictions[item.id]
    return next(p["pred_saliency_scores"] for p in predictions if p["qid"] == item.id)


@pytest.mark.parametrize("task", ["mr", "dvc", "hd"])
def test_legacy_pipeline_matches_the_original_on_synthetic_answers(time_tokenizer, task):
    tok, codec = time_tokenizer
    rng = random.Random({"mr": 1, "dvc": 2, "hd": 3}[task])
    answers, durations = [], []
    while len(answers) < 150:
        duration = float(rng.choice([31, 60, 75, 150]))
        answer = synthetic_answer(rng, task, duration)
        ids = tok.encode(format_times(answer, codec), add_special_tokens=False) + [tok.eos_token_id]
        try:
            _expected(task, original_answer_text(ids, tok), duration)
        except OriginalCrash:  # the original stops on this answer: nothing to compare
            continue
        answers.append(answer)
        durations.append(duration)
    ids, items, predictions, outputs = _pipeline_predictions(task, answers, durations, tok, codec)
    differ = []
    for row, item, out in zip(ids, items, outputs):
        text = original_answer_text(row + [tok.pad_token_id] * 3, tok)
        assert out["legacy_text"] == text
        if _got(task, item, predictions) != _expected(task, text, item.duration):
            differ.append(item.id)
    assert differ == []
    whole = sum(bool(re.search(r"<time>\d+</time>", a)) for a in answers)
    assert whole > 50  # whole-second times, the case the robust text broke


def test_legacy_highlight_example_14_4_and_22_3(time_tokenizer):
    tok, codec = time_tokenizer
    answer = hd_answer([14.0, 22.0], [4.0, 3.0])
    ids, items, predictions, outputs = _pipeline_predictions("hd", [answer], [60.0], tok, codec)
    # "4.0. " ends in a space token before the next time token: that piece keeps it, and the join adds one
    assert outputs[0]["legacy_text"] == (
        "<TIME_ZERO> <TIME_ZERO> <TIME_ONE> <TIME_FOUR> <TIME_DOT> <TIME_ZERO> seconds, significance score: 4.0.  "
        "<TIME_ZERO> <TIME_ZERO> <TIME_TWO> <TIME_TWO> <TIME_DOT> <TIME_ZERO> seconds, significance score: 3.0.")
    expected = original_vhd(outputs[0]["legacy_text"], 60.0)
    assert predictions[0]["pred_saliency_scores"] == expected
    comma = ", ".join(f"{time_mark(t)} seconds, significance score: {s:g}" for t, s in ((14, 4), (22, 3)))
    _, _, predictions, outputs = _pipeline_predictions("hd", [comma], [60.0], tok, codec)
    scores = predictions[0]["pred_saliency_scores"]
    assert scores == original_vhd(outputs[0]["legacy_text"], 60.0)
    # clip max(0, int((t - 1) / 2)): 14 s -> clip 6 with score 4, 22 s -> clip 10 with score 3
    assert {c: s for c, s in enumerate(scores) if s} == {6: 4.0, 10: 3.0}
