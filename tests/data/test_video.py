"""Video reading: sampling, frame times, decoded frames, reader agreement, long and broken files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vtgcore.data.video import (
    SAMPLING_MODES,
    DecordReader,
    PyAVReader,
    SampledClip,
    VideoInfo,
    _decord_available,
    get_reader,
    read_clip,
    sample_indices,
)
from vtgcore.errors import VideoReadError
from vtgcore.data.pattern_videos import (
    decode_frame_id,
    decode_frame_ids,
    frame_times,
    write_corrupt_files,
    write_test_video,
)

HAS_DECORD = _decord_available()
needs_decord = pytest.mark.skipif(not HAS_DECORD, reason="decord is not installed (x86_64 only)")
READERS = ["pyav", pytest.param("decord", marks=needs_decord)]

# name -> (write_test_video kwargs, frame count, fps used for frame_times, vfr)
VIDEOS = {
    "cfr": dict(num_frames=100, fps=8.0),
    "vfr": dict(num_frames=120, fps=10.0, vfr=True, seed=3),
    "bframes": dict(num_frames=90, fps=12.0, codec="libx264", codec_options={"bf": "2", "crf": "12"}),
    "short": dict(num_frames=10, fps=4.0),
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("videos")
    return {name: write_test_video(root / f"{name}.mp4", **kwargs) for name, kwargs in VIDEOS.items()}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory) -> Path:
    """Two hours at 1 fps, 32x32 (7200 frames); written in well under a second."""
    return write_test_video(
        tmp_path_factory.mktemp("long") / "long.mp4", duration=7200, fps=1.0, size=(32, 32)
    )


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> dict[str, Path]:
    return write_corrupt_files(tmp_path_factory.mktemp("broken"))


def written_times(name: str) -> np.ndarray:
    kwargs = VIDEOS[name]
    return np.asarray(
        frame_times(
            kwargs["num_frames"], kwargs["fps"], vfr=kwargs.get("vfr", False), seed=kwargs.get("seed", 0)
        )
    )


# ------------------------------------------------------------------------------------------
# sample_indices


@given(vlen=st.integers(0, 5000), n=st.integers(1, 200))
def test_uniform_is_the_original_formula(vlen, n):
    count = min(n, vlen)
    expected = [int(np.floor(i * vlen / count)) for i in range(count)]
    assert sample_indices(vlen, n, "uniform") == expected


@settings(max_examples=200, deadline=None)
@given(vlen=st.integers(1, 5000), n=st.integers(1, 200), seed=st.integers(0, 2**31))
def test_random_per_segment_one_sorted_pick_inside_each_segment(vlen, n, seed):
    picks = sample_indices(vlen, n, "random_per_segment", torch.Generator().manual_seed(seed))
    count = min(n, vlen)
    bounds = [k * vlen // count for k in range(count + 1)]
    assert len(picks) == count
    assert picks == sorted(set(picks))
    for k, pick in enumerate(picks):
        assert bounds[k] <= pick <= bounds[k + 1] - 1


def test_random_per_segment_reaches_the_last_frame_of_each_segment():
    generator = torch.Generator().manual_seed(0)
    seen = set()
    for _ in range(200):
        seen.update(sample_indices(20, 10, "random_per_segment", generator))
    assert seen == set(range(20))  # segments of 2 frames: both frames, the last included


def test_random_per_segment_is_reproducible_with_a_seed():
    first = sample_indices(1000, 96, "random_per_segment", torch.Generator().manual_seed(7))
    again = sample_indices(1000, 96, "random_per_segment", torch.Generator().manual_seed(7))
    other = sample_indices(1000, 96, "random_per_segment", torch.Generator().manual_seed(8))
    assert first == again
    assert first != other


def test_random_per_segment_with_one_frame_segments_takes_every_frame():
    assert sample_indices(50, 50, "random_per_segment", torch.Generator().manual_seed(0)) == list(range(50))
    assert sample_indices(7, 96, "random_per_segment") == list(range(7))


def test_legacy_never_picks_the_last_frame_of_a_long_segment():
    generator = torch.Generator().manual_seed(0)
    ends = {k * 1000 // 10 - 1 for k in range(1, 11)}  # the last frame of each segment
    for _ in range(300):
        picks = sample_indices(1000, 10, "random_per_segment_legacy", generator)
        assert len(picks) == 10 and picks == sorted(picks)
        assert not ends & set(picks)
        assert all(k * 100 <= p <= k * 100 + 98 for k, p in enumerate(picks))


def test_legacy_falls_back_to_a_random_subset_when_vlen_below_2n():
    generator = torch.Generator().manual_seed(0)
    bounds = [k * 15 // 10 for k in range(11)]
    left_its_segment = False
    for _ in range(100):
        picks = sample_indices(15, 10, "random_per_segment_legacy", generator)
        assert len(picks) == 10 and picks == sorted(set(picks)) and picks[0] >= 0 and picks[-1] < 15
        left_its_segment |= any(not bounds[k] <= p < bounds[k + 1] for k, p in enumerate(picks))
    assert left_its_segment  # a subset, not one pick per segment


def test_unknown_sampling_mode_names_the_allowed_ones():
    with pytest.raises(ValueError) as info:
        sample_indices(100, 8, "rand")
    for mode in SAMPLING_MODES:
        assert mode in str(info.value)


def test_empty_video_and_bad_arguments():
    assert sample_indices(0, 8, "random_per_segment") == []
    with pytest.raises(ValueError):
        sample_indices(10, 0, "uniform")


# ------------------------------------------------------------------------------------------
# Frames and times


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("name", ["cfr", "vfr", "bframes"])
@pytest.mark.parametrize("sampling", ["uniform", "random_per_segment"])
def test_clip_frames_and_times_are_the_requested_ones(videos, reader, name, sampling):
    clip = read_clip(
        videos[name], 16, sampling=sampling, reader=reader, generator=torch.Generator().manual_seed(1)
    )
    assert isinstance(clip, SampledClip)
    assert clip.frames.shape == (16, 3, 64, 64) and clip.frames.dtype == torch.uint8
    assert clip.timestamps.dtype == torch.float64 and clip.timestamps.shape == (16,)
    assert decode_frame_ids(clip.frames) == clip.indices
    np.testing.assert_allclose(clip.timestamps.numpy(), written_times(name)[clip.indices], atol=1e-3, rtol=0)
    assert clip.path == str(videos[name])


def test_vfr_test_video_really_is_variable(videos):
    gaps = np.diff(written_times("vfr"))
    assert gaps.min() < 0.07 and gaps.max() > 0.13


def test_pyav_times_are_exact(videos):
    indices = list(range(0, 120, 7))
    _, times = PyAVReader().read(videos["vfr"], indices)
    np.testing.assert_allclose(times.numpy(), written_times("vfr")[indices], atol=1e-9, rtol=0)


@pytest.mark.parametrize("reader", READERS)
def test_read_keeps_request_order_and_repeats(videos, reader):
    indices = [50, 3, 3, 99, 0]
    frames, times = get_reader(reader).read(videos["cfr"], indices)
    assert decode_frame_ids(frames) == indices
    np.testing.assert_allclose(times.numpy(), written_times("cfr")[indices], atol=1e-3)


@pytest.mark.parametrize("reader", READERS)
@pytest.mark.parametrize("size", [(40, 40), (32, 48), (48, 80)])
def test_resize_while_decoding(videos, reader, size):
    frames, _ = get_reader(reader).read(videos["cfr"], [0, 33, 99], size=size)
    assert frames.shape == (3, 3, *size)
    assert decode_frame_ids(frames) == [0, 33, 99]


@pytest.mark.parametrize("reader", READERS)
def test_probe(videos, reader):
    info = get_reader(reader).probe(videos["cfr"])
    assert info == VideoInfo(str(videos["cfr"]), 100, 8.0, 12.5, 64, 64)


@pytest.mark.parametrize("reader", READERS)
def test_short_video_gives_all_its_frames(videos, reader):
    for sampling in ["uniform", "random_per_segment", "random_per_segment_legacy"]:
        clip = read_clip(videos["short"], 96, sampling=sampling, reader=reader)
        assert clip.indices == list(range(10))
        assert decode_frame_ids(clip.frames) == list(range(10))
        assert clip.duration == pytest.approx(2.5)


@pytest.mark.parametrize("reader", READERS)
def test_index_out_of_range(videos, reader):
    with pytest.raises(VideoReadError, match="out of range"):
        get_reader(reader).read(videos["cfr"], [100])


def test_read_clip_accepts_a_reader_instance(videos):
    reader = PyAVReader()
    clip = read_clip(videos["cfr"], 4, reader=reader)
    assert clip.indices == [0, 25, 50, 75]
    assert reader.frames_decoded > 0


# No webm here: once decord is imported, its bundled libvpx shadows PyAV's and the libvpx
# encoder fails to open (decoding VP8/VP9 is unaffected: FFmpeg's own decoders are used).
CONTAINERS = {
    "mkv": dict(suffix="mkv"),
    "mkv_bframes": dict(suffix="mkv", codec="libx264", codec_options={"bf": "3"}),
    "ts": dict(suffix="ts"),
    "ts_bframes": dict(suffix="ts", codec="libx264", codec_options={"bf": "2"}),
    "ts_vfr": dict(suffix="ts", vfr=True),
}


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_pyav_reads_other_containers_exactly(tmp_path, name):
    options = dict(CONTAINERS[name])
    path = write_test_video(tmp_path / f"v.{options.pop('suffix')}", num_frames=120, fps=8.0, **options)
    reader = PyAVReader()
    assert reader.probe(path).num_frames == 120
    clip = read_clip(path, 30, "random_per_segment", reader, generator=torch.Generator().manual_seed(0))
    assert decode_frame_ids(clip.frames) == clip.indices
    expected = np.asarray(frame_times(120, 8.0, vfr=options.get("vfr", False)))[clip.indices]
    np.testing.assert_allclose(clip.timestamps.numpy(), expected, atol=1e-6, rtol=0)
    assert reader.frames_decoded < 120 + 30


# ------------------------------------------------------------------------------------------
# decord and PyAV agree


@needs_decord
@pytest.mark.parametrize("name", ["cfr", "vfr", "bframes", "short"])
def test_decord_and_pyav_agree(videos, name):
    decord_reader, pyav_reader = DecordReader(), PyAVReader()
    a, b = decord_reader.probe(videos[name]), pyav_reader.probe(videos[name])
    assert a.num_frames == b.num_frames
    assert a.fps == pytest.approx(b.fps) and a.duration == pytest.approx(b.duration)
    indices = sample_indices(a.num_frames, 24, "random_per_segment", torch.Generator().manual_seed(0))
    frames_a, times_a = decord_reader.read(videos[name], indices)
    frames_b, times_b = pyav_reader.read(videos[name], indices)
    np.testing.assert_allclose(times_a.numpy(), times_b.numpy(), atol=1e-3, rtol=0)
    assert (frames_a.float() - frames_b.float()).abs().mean() < 2.0


@needs_decord
@pytest.mark.parametrize("name", ["cfr", "vfr", "bframes"])
@pytest.mark.parametrize("seek_gap,chunk_bytes", [(32, 64 << 20), (4, 64 << 20), (1, 64 << 20), (32, 3 * 40 * 40 * 5)])
def test_decord_decodes_near_frames_through_with_the_same_frames(videos, name, seek_gap, chunk_bytes):
    """Runs of near frames (gap <= seek_gap, chunks of at most chunk_bytes) give decord's own frames."""
    import decord

    indices = [50, 3, 3, 7, 8, 20, 89, 0, 60, 58]
    frames, times = DecordReader(seek_gap=seek_gap, chunk_bytes=chunk_bytes).read(videos[name], indices, (40, 40))
    raw = decord.VideoReader(str(videos[name]), ctx=decord.cpu(0), width=40, height=40)
    for row, index in enumerate(indices):  # one frame at a time: decord's plain seeking read
        np.testing.assert_array_equal(frames[row].permute(1, 2, 0).numpy(), raw[index].asnumpy())
    assert decode_frame_ids(frames) == indices
    np.testing.assert_allclose(times.numpy(), raw.get_frame_timestamp(indices)[:, 0], atol=0)


def test_decord_reader_refuses_bad_settings():
    with pytest.raises(ValueError, match="seek_gap and chunk_bytes"):
        DecordReader(seek_gap=0)
    with pytest.raises(ValueError, match="seek_gap and chunk_bytes"):
        DecordReader(chunk_bytes=0)


@needs_decord
@pytest.mark.xfail(strict=True, reason="decord 0.6.0 returns frames one GOP late for MPEG-TS with B-frames")
def test_decord_mpegts_with_bframes(tmp_path):
    path = write_test_video(tmp_path / "b.ts", num_frames=60, codec="libx264", codec_options={"bf": "2"})
    frames, _ = DecordReader().read(path, [0, 30])
    assert decode_frame_ids(frames) == [0, 30]


# ------------------------------------------------------------------------------------------
# Long videos


def test_long_video_seeks_instead_of_decoding_everything(long_video):
    reader = PyAVReader()
    start = time.perf_counter()
    clip = read_clip(long_video, 96, reader=reader)
    elapsed = time.perf_counter() - start
    assert clip.frames.shape == (96, 3, 32, 32)
    assert decode_frame_ids(clip.frames) == clip.indices == sample_indices(7200, 96, "uniform")
    np.testing.assert_allclose(clip.timestamps.numpy(), np.asarray(clip.indices, dtype=float))
    assert clip.duration == pytest.approx(7200.0)
    assert reader.frames_decoded <= 96 * 12  # at most one GOP (12 frames) per sample
    assert elapsed < 5.0


@needs_decord
def test_long_video_with_decord(long_video):
    start = time.perf_counter()
    clip = read_clip(long_video, 96, reader="decord", size=(32, 32))
    assert decode_frame_ids(clip.frames) == clip.indices
    assert time.perf_counter() - start < 10.0


# ------------------------------------------------------------------------------------------
# Broken files


BROKEN = ["missing", "zero_byte", "text_as_mp4", "truncated", "truncated_midway", "audio_only"]
ALL_READERS = ["pyav", pytest.param("decord", marks=needs_decord), "auto"]


@pytest.mark.parametrize("reader", ALL_READERS)
@pytest.mark.parametrize("kind", BROKEN)
def test_broken_file_raises_one_line_video_read_error(broken, kind, reader):
    path = broken[kind]
    for call in (lambda: read_clip(path, 8, reader=reader), lambda: get_reader(reader).probe(path)):
        with pytest.raises(VideoReadError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{path}: ")
        assert "\n" not in message


def test_broken_file_messages_say_what_is_wrong(broken):
    expected = {
        "missing": "file not found",
        "zero_byte": "empty file",
        "text_as_mp4": "cannot open",
        "truncated": "cannot open",
        "truncated_midway": "truncated",
        "audio_only": "no video stream",
    }
    for kind, words in expected.items():
        with pytest.raises(VideoReadError, match=words):
            read_clip(broken[kind], 8, reader="pyav")


@pytest.mark.parametrize("reader", READERS)
def test_stream_corrupted_midway_raises(tmp_path, reader):
    path = write_test_video(tmp_path / "garbage.mp4", num_frames=64)
    data = bytearray(path.read_bytes())
    third, half = len(data) // 3, len(data) // 2
    data[third:half] = np.random.default_rng(0).integers(0, 256, half - third, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with pytest.raises(VideoReadError, match=str(path)):
        read_clip(path, 64, reader=reader)


def test_reader_names():
    assert isinstance(get_reader("pyav"), PyAVReader)
    assert isinstance(get_reader("auto"), DecordReader if HAS_DECORD else PyAVReader)
    with pytest.raises(ValueError, match="decord, pyav, auto"):
        get_reader("opencv")


# ------------------------------------------------------------------------------------------
# The test-video helper itself


def test_frame_fn_replaces_the_pattern(tmp_path):
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 0] = 200
    path = write_test_video(tmp_path / "red.mp4", num_frames=3, size=(32, 32), frame_fn=lambda i: colour)
    frames, _ = PyAVReader().read(path, [0, 2])
    assert abs(frames[:, 0].float().mean().item() - 200) < 8
    assert frames[:, 2].float().mean().item() < 20


def test_decode_frame_id_accepts_both_layouts(videos):
    frames, _ = PyAVReader().read(videos["cfr"], [77])
    assert decode_frame_id(frames[0]) == 77
    assert decode_frame_id(frames[0].permute(1, 2, 0).numpy()) == 77


def test_auto_reads_mpegts_with_pyav(tmp_path):
    from vtgcore.data.video import read_clip, reader_for

    path = write_test_video(tmp_path / "b.ts", num_frames=60, codec="libx264", codec_options={"bf": "2"})
    assert reader_for(path, "auto") == "pyav" and reader_for(path, "decord") == "decord"
    clip = read_clip(path, 4, reader="auto")
    assert decode_frame_ids(clip.frames) == clip.indices == [0, 15, 30, 45]
