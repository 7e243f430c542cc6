"""Dataset and collation: padded batches with masks, processor output, broken videos raised or skipped."""

import pytest
import torch
from torch.utils.data import DataLoader

from vtgcore.data.dataset import FrameConfig, SkipLog, VideoCollator, VideoConversationDataset
from vtgcore.data.formats import EvalItem, TrainItem
from vtgcore.errors import VideoReadError
from vtgcore.data.pattern_videos import frame_times, write_corrupt_files, write_test_video

QA = [{"q": "When does it happen?", "a": "<time>1.0</time> - <time>2.0</time> seconds."}]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("ds")
    write_test_video(root / "long.mp4", num_frames=40, fps=4.0)
    write_test_video(root / "short.mp4", num_frames=5, fps=4.0)
    write_corrupt_files(root)
    return root


def frames_cfg(**kw):
    return FrameConfig(**{"num_frames": 8, "image_size": 32, "reader": "pyav", **kw})


def test_samples_and_padding(root):
    ds = VideoConversationDataset([TrainItem("long.mp4", QA), TrainItem("short.mp4", QA)], frames_cfg(), video_root=root)
    first = ds[0]
    assert first["frames"].shape == (8, 3, 32, 32) and first["frames"].dtype == torch.float32
    expected = torch.tensor(frame_times(40, 4.0), dtype=torch.float64)[[int(i * 40 / 8) for i in range(8)]]
    assert torch.equal(first["timestamps"], expected)  # float64, exact: never cast to float32 for the prompt
    batch = VideoCollator()([ds[0], ds[1]])
    assert batch["frames"].shape == (2, 8, 3, 32, 32)
    assert batch["frame_mask"].tolist() == [[True] * 8, [True] * 5 + [False] * 3]
    assert torch.all(batch["frames"][1, 5:] == 0)
    assert batch["timestamps"][1, 5:].tolist() == [batch["timestamps"][1, 4].item()] * 3
    torch.testing.assert_close(batch["duration"], torch.tensor([10.0, 1.25]))


def test_random_sampling_is_reproducible_per_epoch(root):
    ds = VideoConversationDataset([TrainItem("long.mp4", QA)], frames_cfg(sampling="random_per_segment", crop=True),
                                  video_root=root, seed=3)
    a, b = ds[0], ds[0]
    assert torch.equal(a["timestamps"], b["timestamps"]) and torch.equal(a["frames"], b["frames"])
    ds.set_epoch(1)
    assert not torch.equal(a["timestamps"], ds[0]["timestamps"])


def test_collator_with_processor_matches_model(root, tiny):
    model, proc = tiny
    items = [TrainItem("long.mp4", QA), TrainItem("short.mp4", QA)]
    ds = VideoConversationDataset(items, frames_cfg(), video_root=root)
    batch = VideoCollator(proc)([ds[0], ds[1]])
    assert (batch["input_ids"] == proc.video_token_id).sum(1).tolist() == [8, 8]
    out = model(batch["frames"], batch["timestamps"], batch["input_ids"], batch["attention_mask"],
                batch["labels"], frame_mask=batch["frame_mask"])
    assert torch.isfinite(out.loss)
    text = model.tokenizer.decode(batch["input_ids"][1])
    assert "The video contains 5 frames" in text  # the real frames only


def test_eval_items_get_the_eval_prompt(root, tiny):
    _, proc = tiny
    item = EvalItem(id="q1", video="long.mp4", task="mr", query="the red circle appears.", windows=[(1.0, 2.0)])
    sample = VideoConversationDataset([item], frames_cfg(), video_root=root)[0]
    assert sample["turns"] == [{"q": "Find the video segment that corresponds to the given textual query "
                                     "'the red circle appears' and determine its start and end seconds."}]
    batch = VideoCollator(proc, add_generation_prompt=True)([sample])
    assert batch["labels"].eq(-100).all() and batch["items"] == [item]


def test_broken_video_raises_or_is_skipped_and_reported(root):
    items = [TrainItem("long.mp4", QA), TrainItem("text_as_mp4.mp4", QA), TrainItem("missing.mp4", QA)]
    strict = VideoConversationDataset(items, frames_cfg(), video_root=root)
    with pytest.raises(VideoReadError, match="text_as_mp4.mp4"):
        strict[1]
    lenient = VideoConversationDataset(items, frames_cfg(), video_root=root, skip_broken=True)
    log = SkipLog()
    loader = DataLoader(lenient, batch_size=2, collate_fn=VideoCollator(), num_workers=1)
    sizes = []
    for batch in loader:
        log.update(batch)
        sizes.append(batch["frames"].shape[0])
    assert sizes == [1, 0]
    report = log.report()
    assert report.startswith("2 sample(s) skipped") and "#1:" in report and "missing.mp4" in report
