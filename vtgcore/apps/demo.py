"""``vtg demo``: a local web page (gradio, the ``demo`` extra) to ground your own videos.

Upload a video, choose the task, type a query: the page shows the answer and a timeline of the
predicted windows over the video. It serves on 127.0.0.1 unless told otherwise, refuses uploads
over ``max_upload_mb`` (gradio rejects them while uploading; the answer function checks again) and
videos longer than ``max_duration_s``, each with a message that says which limit and how to change
it. Without a checkpoint the page still opens and says how to give one.

The answer function (:func:`answer`) and the timeline (:func:`timeline_html`) are plain functions of
the pipeline, tested without a browser; :func:`build_demo` wires them into gradio, imported only
there.
"""

from __future__ import annotations

import html
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from vtgcore.errors import VTGError
from vtgcore.apps.pipeline import clock
from vtgcore.vocab import QUERY_TASKS, TASK_LABELS, TASKS

if TYPE_CHECKING:
    from vtgcore.apps.pipeline import Grounding, Pipeline

VIDEO_TYPES = ["video", ".mp4", ".mkv", ".webm", ".avi", ".mov", ".ts", ".m2ts", ".mts", ".flv", ".mpg", ".mpeg"]
"""What the upload box offers (browsers filter by these; the reader decides what can be read)."""
FILMSTRIP_FRAMES = 8
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
NO_MODEL = ("No model loaded, so nothing can be answered. Start the demo with a trained run: "
            "`vtg demo --run RUN_DIR` (e.g. `vtg demo --run work_dirs/main/run` after `make run`), "
            "or `vtg demo --recipe RECIPE --checkpoint DIR`.")


@dataclass
class DemoLimits:
    """What the demo accepts.

    Attributes:
        max_upload_mb: largest upload in MB (2**20 bytes).
        max_duration_s: longest video in seconds.
    """

    max_upload_mb: float = 200.0
    max_duration_s: float = 3600.0

    def __post_init__(self) -> None:
        if not self.max_upload_mb > 0 or not self.max_duration_s > 0:
            raise VTGError(f"demo limits must be positive, got {self.max_upload_mb} MB and {self.max_duration_s} s")

    @property
    def max_upload_bytes(self) -> int:
        """``max_upload_mb`` in bytes."""
        return int(self.max_upload_mb * 2**20)


def check_video(path: str | os.PathLike[str], limits: DemoLimits, pipeline: "Pipeline") -> Optional[str]:
    """Why ``path`` is refused (size, length, unreadable), or None when it may be answered."""
    from vtgcore.errors import VideoReadError

    size = os.path.getsize(path)
    if size > limits.max_upload_bytes:
        return (f"The video is {size / 2**20:.1f} MB; this demo accepts at most {limits.max_upload_mb:g} MB "
                "(start it with --max-upload-mb to change the limit).")
    try:
        info = pipeline.probe(path)
    except VideoReadError as exc:
        return f"This file cannot be read as a video: {exc}"
    if info.duration > limits.max_duration_s:
        return (f"The video is {clock(info.duration)} long ({info.duration:.1f} s); this demo accepts at most "
                f"{clock(limits.max_duration_s)} ({limits.max_duration_s:g} s; start it with --max-duration "
                "to change the limit).")
    return None


def filmstrip(path: str | os.PathLike[str], count: int = FILMSTRIP_FRAMES, height: int = 56) -> list[tuple[float, str]]:
    """``count`` frames spread over the video as ``(seconds, PNG data URI)``, for the timeline.

    Returns an empty list when the frames cannot be read (the answer is shown all the same).
    """
    import base64
    import io

    from PIL import Image

    from vtgcore.data.video import read_clip
    from vtgcore.errors import VideoReadError

    try:
        clip = read_clip(path, count, sampling="uniform", reader="auto")
    except VideoReadError:
        return []
    out = []
    for frame, seconds in zip(clip.frames, clip.timestamps.tolist()):
        image = Image.fromarray(frame.permute(1, 2, 0).numpy())
        image.thumbnail((height * 4, height))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        out.append((float(seconds), "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()))
    return out


def timeline_html(result: "Grounding", frames: Optional[list[tuple[float, str]]] = None) -> str:
    """The predicted windows as coloured spans over a bar as long as the video, with times under it
    and, when given, a strip of frames placed at their times.

    Each window is a ``div.vtg-window`` with ``data-start`` and ``data-end`` in seconds (and a
    tooltip in mm:ss); the bar is ``div.vtg-timeline`` with ``data-duration``.

    Args:
        result: a pipeline result.
        frames: ``(seconds, image URL)`` pairs (see :func:`filmstrip`).
    """
    duration = max(float(result.duration), 1e-6)
    spans = []
    for k, (start, end) in enumerate(result.windows, start=1):
        left = 100.0 * min(max(start / duration, 0.0), 1.0)
        width = max(100.0 * min(max(end / duration, 0.0), 1.0) - left, 0.4)  # a zero-length window stays visible
        tip = html.escape(f"{k}: {start:.1f} - {end:.1f} s ({clock(start)} - {clock(end)})")
        spans.append(f'<div class="vtg-window" data-start="{float(start)!r}" data-end="{float(end)!r}" title="{tip}" '
                     f'style="position:absolute;top:0;bottom:0;left:{left:.3f}%;width:{width:.3f}%;'
                     f'background:#f97316;opacity:0.85;border-radius:3px;color:#fff;font-size:11px;'
                     f'text-align:center;overflow:hidden">{k}</div>')
    ticks = "".join(f"<span>{clock(duration * f / 4)}</span>" for f in range(5))
    strip = "".join(f'<img src="{url}" alt="frame at {clock(t)}" title="{clock(t)}" '
                    f'style="height:56px;flex:1 1 0;min-width:0;object-fit:cover;margin:0 1px">'
                    for t, url in (frames or []))
    strip = f'<div class="vtg-frames" style="display:flex;margin-bottom:2px">{strip}</div>' if strip else ""
    empty = "" if result.windows else '<p class="vtg-no-window">no window predicted</p>'
    label = html.escape(TASK_LABELS.get(result.task, result.task))
    return (f'<div class="vtg-timeline" data-duration="{float(result.duration)!r}" data-task="{result.task}">'
            f'<div style="font-size:12px;margin-bottom:4px">{label}: {len(result.windows)} window(s) over '
            f'{clock(result.duration)}</div>'
            f'{strip}<div style="position:relative;height:28px;background:#e5e7eb;border-radius:4px">{"".join(spans)}</div>'
            f'<div style="display:flex;justify-content:space-between;font-size:11px;color:#555">{ticks}</div>'
            f"{empty}</div>")


def answer(pipeline: Optional["Pipeline"], video: Optional[str], task: str, query: str,
           limits: Optional[DemoLimits] = None, message: str = NO_MODEL) -> tuple[str, str]:
    """What the page shows for one request: ``(answer text, timeline HTML)``.

    Args:
        pipeline: the loaded model, or None (then ``message`` is the answer).
        video: the uploaded file, or None.
        task: ``mr``, ``dvc``, ``hd`` or ``summary``.
        query: the query (needed by ``mr`` and ``hd``).
        limits: upload and duration limits (default: :class:`DemoLimits`).
        message: the answer when there is no model.

    Returns:
        The answer (from :meth:`~vtgcore.apps.pipeline.Grounding.describe`, or a message that says what is
        wrong) and the timeline (empty with a message).
    """
    from vtgcore.errors import VideoReadError

    limits = limits or DemoLimits()
    if pipeline is None:
        return message, ""
    if not video:
        return (f"Upload a video first (at most {limits.max_upload_mb:g} MB and {clock(limits.max_duration_s)} "
                "long).", "")
    if task not in TASKS:
        return f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.", ""
    if task in QUERY_TASKS and not (query or "").strip():
        return f"Type a query for {TASK_LABELS[task]}: what should be found in the video?", ""
    refused = check_video(video, limits, pipeline)
    if refused:
        return refused, ""
    try:
        result = pipeline.predict(video, query if task in QUERY_TASKS else None, task)
    except VideoReadError as exc:
        return f"This file cannot be read as a video: {exc}", ""
    except VTGError as exc:
        return f"Error: {exc}", ""
    return result.describe(verbose=True), timeline_html(result, filmstrip(video))


def build_demo(pipeline: Optional["Pipeline"], *, limits: Optional[DemoLimits] = None,
               message: str = NO_MODEL) -> Any:
    """The gradio ``Blocks`` of the page (not launched).

    Args:
        pipeline: the loaded model, or None: the page then shows ``message`` and answers with it.
        limits: upload and duration limits.
        message: what to show without a model.

    Raises:
        VTGError: gradio is not installed (``pip install 'vtgcore[demo]'``).
    """
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError:
        raise VTGError("vtg demo needs gradio: pip install 'vtgcore[demo]' (or pip install gradio)") from None

    limits = limits or DemoLimits()
    if pipeline is None:
        status = f"**{message}**"
    else:
        weights = pipeline.checkpoint if pipeline.checkpoint is not None else "random weights (smoke test only)"
        status = (f"Model: `{pipeline.recipe.experiment_name}` from `{weights}` on {pipeline.device}, "
                  f"{pipeline.frames.num_frames} frames per video.")
    limits_line = (f"Uploads up to {limits.max_upload_mb:g} MB and videos up to {clock(limits.max_duration_s)} "
                   "are accepted.")

    def run(video: Optional[str], task: str, query: str) -> tuple[str, str]:
        return answer(pipeline, video, task, query, limits, message)

    # uploads are kept in gradio's cache: every hour, those older than an hour are deleted
    with gr.Blocks(title="vtgcore: when does it happen?", analytics_enabled=False,
                   delete_cache=(3600, 3600)) as demo:
        gr.Markdown("## vtgcore: when does it happen in your video?")
        gr.Markdown(status, elem_id="vtg-status")
        gr.Markdown(limits_line, elem_id="vtg-limits")
        with gr.Row():
            with gr.Column():
                # a file, not gr.Video: any format decord or PyAV reads, also those browsers cannot play
                video = gr.File(label="Video", file_types=VIDEO_TYPES, type="filepath", elem_id="vtg-video")
                task = gr.Radio(choices=[(f"{TASK_LABELS[t]} ({t})", t) for t in TASKS], value="mr", label="Task",
                                elem_id="vtg-task")
                query = gr.Textbox(label="Query (moment retrieval, highlights)", elem_id="vtg-query",
                                   placeholder="e.g. the red square moves to the left")
                button = gr.Button("Ground", variant="primary", elem_id="vtg-run")
            with gr.Column():
                text = gr.Textbox(label="Answer", lines=10, interactive=False, elem_id="vtg-answer",
                                  value="" if pipeline is not None else message)
                timeline = gr.HTML(elem_id="vtg-timeline")
        button.click(run, [video, task, query], [text, timeline])
        query.submit(run, [video, task, query], [text, timeline])
    return demo


def serve(pipeline: Optional["Pipeline"], *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          limits: Optional[DemoLimits] = None, message: str = NO_MODEL, block: bool = True) -> Any:
    """Build the page and serve it on ``host:port`` (gradio's ``launch``; no share link, no analytics).

    The upload limit is given to gradio as well (``max_file_size``), so gradio refuses a larger
    upload as it is uploaded (the page checks the size before sending, the server again), before it
    is stored.

    Args:
        block: wait until interrupted (False: return the running ``Blocks``; call ``close()``).
    """
    limits = limits or DemoLimits()
    demo = build_demo(pipeline, limits=limits, message=message)
    import gradio as gr

    theme = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                              font_mono=["ui-monospace", "monospace"])  # no web fonts: nothing leaves the machine
    demo.queue(default_concurrency_limit=1)  # one model, one request at a time
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, show_error=True,
                max_file_size=limits.max_upload_bytes, prevent_thread_lock=not block, ssr_mode=False, quiet=False,
                theme=theme)
    return demo

