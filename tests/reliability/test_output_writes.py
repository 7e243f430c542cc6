"""Output writing (issue 20, item 2): what an output path may be, and what mode the file gets.

* :func:`vtgcore.utils.fileio.atomic_write_bytes` (every result, checkpoint and cache file) refuses
  a target that exists and is not a regular file (a device node, a FIFO, a socket, a directory,
  also through a symlink) with one line, and never replaces it;
* a new file gets ``0o666`` less the umask, a replaced file keeps its mode (checkpoints and results
  stay readable by collaborators);
* a command refuses an output that is one of its inputs (the same path, a symlink to it or a hard
  link), before it reads or writes anything, and the input is left as it was
  (:func:`vtgcore.utils.fileio.check_not_input`).

:data:`CASES` lists the inputs tried, with how each fared before the fix (``before``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest

from vtgcore.apps import cli
from vtgcore.errors import OutputError
from vtgcore.utils.fileio import atomic_write_bytes, atomic_write_text, check_not_input, check_output_target, current_umask

ROOT = Path(__file__).resolve().parents[2]
SYNTH_TINY = ROOT / "recipes" / "vtgllm" / "synth_tiny.yaml"

#: (name, before): every input of this file; ``before``: ``clear`` or ``fixed: <what happened>``.
CASES = [
    ("character device as output (/dev/null; as root a device node)", "fixed: the node became a regular file"),
    ("FIFO as output", "fixed: the FIFO became a regular file"),
    ("socket as output", "fixed: the socket became a regular file"),
    ("directory as output", "clear"),
    ("symlink to a device as output", "fixed: the symlink became a regular file"),
    ("new file under umask 022", "fixed: mode 0600"),
    ("new file under umask 077", "clear"),
    ("new file under umask 002", "fixed: mode 0600"),
    ("replacing a 0644 file under umask 077", "fixed: became 0600"),
    ("replacing a 0640 file under umask 022", "fixed: became 0600"),
    ("symlink to a regular file as output", "fixed: the link became a regular file"),
    ("checkpoint files under umask 022", "fixed: every file 0600"),
    ("vtg data convert OUT = IN", "fixed: overwrote the ground truth, exit 0"),
    ("vtg data convert OUT = a symlink to IN", "fixed: the link replaced, exit 0"),
    ("vtg data convert OUT = a hard link of IN", "fixed: the link broken, exit 0"),
    ("vtg data convert OUT = the second of several inputs", "fixed: overwrote it, exit 0"),
    ("vtg data convert OUT = /dev/null", "fixed: as root, /dev/null replaced"),
    ("vtg data convert OUT = a directory", "clear"),  # a late but clear "Is a directory"
    ("vtg eval --out whose metrics.json is the annotation file", "fixed: overwrote the annotation"),
    ("vtg convert video-llama SRC = OUT_DIR/model.safetensors", "fixed: overwrote the source"),
    ("vtg convert vtgllm-original SRC = OUT_DIR/model.safetensors", "fixed: overwrote the source"),
    ("vtg data pretrain-encoder --out = the recipe", "fixed: overwrote the recipe"),
]


def writes_counts() -> dict[str, int]:
    fixed = sum(1 for _, before in CASES if before.startswith("fixed"))
    return {"tried": len(CASES), "clear_before": len(CASES) - fixed, "fixed": fixed}


@pytest.fixture
def umask():
    """Set the process umask for one test (restored afterwards)."""
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _char_device(tmp_path: Path) -> Path:
    """A character device to write to: as root, a fresh null device node in ``tmp_path`` (so a
    regression cannot replace the system's /dev/null); otherwise /dev/null itself."""
    if os.geteuid() != 0:
        return Path("/dev/null")
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError:
        pytest.skip("cannot create a device node here")
    return node


def _one_line_error(argv: list[str], capsys) -> str:
    assert cli.main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("vtg: error: ") and len(err.splitlines()) == 1, err
    return err


# ------------------------------------------------------------------------------------------------
# Targets that are not regular files


def test_dev_null_is_refused_and_stays_a_device(tmp_path):
    with pytest.raises(OutputError, match=r"^/dev/null: cannot write: it is a character device, not a regular file"):
        check_output_target("/dev/null")
    node = _char_device(tmp_path)
    with pytest.raises(OutputError, match=rf"^{node}: cannot write: it is a character device"):
        atomic_write_text(node, "results")
    assert stat.S_ISCHR(os.stat(node).st_mode)
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert not [p for p in node.parent.iterdir() if p.name.endswith(".tmp")]


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "out.json"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match=r"out.json: cannot write: it is a FIFO \(named pipe\)"):
        atomic_write_text(fifo, "{}")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(OutputError, match="it is a socket"):
            atomic_write_bytes(path, b"x")
        assert stat.S_ISSOCK(os.stat(path).st_mode)
    finally:
        server.close()


def test_a_directory_is_refused(tmp_path):
    folder = tmp_path / "metrics.json"
    folder.mkdir()
    (folder / "keep").write_text("k")
    with pytest.raises(OutputError, match=r"metrics.json: cannot write: it is a directory, not a regular file"):
        atomic_write_text(folder, "{}")
    assert (folder / "keep").read_text() == "k"


def test_a_symlink_to_a_device_is_refused(tmp_path):
    node = _char_device(tmp_path)
    link = tmp_path / "out.json"
    link.symlink_to(node)
    with pytest.raises(OutputError, match="character device"):
        atomic_write_text(link, "{}")
    assert link.is_symlink() and stat.S_ISCHR(os.stat(link).st_mode)


# ------------------------------------------------------------------------------------------------
# Modes


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_a_new_file_gets_the_umask_mode(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    out = tmp_path / "sub" / "new.json"
    atomic_write_text(out, "{}")
    assert _mode(out) == expected


def test_the_umask_is_read_without_proc_too(monkeypatch, umask):
    import builtins

    umask(0o027)
    real_open = builtins.open

    def no_proc(path, *args, **kwargs):
        if str(path).startswith("/proc/"):
            raise OSError("no /proc")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", no_proc)
    assert current_umask() == 0o027
    assert os.umask(0o027) == 0o027  # unchanged by the reading


@pytest.mark.parametrize("existing, mask", [(0o644, 0o077), (0o640, 0o022), (0o600, 0o022)])
def test_replacing_a_file_keeps_its_mode(tmp_path, umask, existing, mask):
    out = tmp_path / "metrics.json"
    out.write_text("old")
    out.chmod(existing)
    umask(mask)
    atomic_write_text(out, "new")
    assert out.read_text() == "new" and _mode(out) == existing


def test_a_symlink_to_a_file_is_followed_and_kept(tmp_path):
    target = tmp_path / "shared" / "results.json"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o644)
    link = tmp_path / "results.json"
    link.symlink_to(target)
    atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new" and _mode(target) == 0o644


def test_checkpoint_files_are_readable_by_collaborators(tmp_path, umask, tiny):
    from vtgcore.checkpoint import save_checkpoint

    umask(0o022)
    model, _ = tiny
    folder = save_checkpoint(model, tmp_path / "iter_1")
    files = [p for p in folder.iterdir() if p.is_file()]
    assert files and all(_mode(p) == 0o644 for p in files), {p.name: oct(_mode(p)) for p in files}


# ------------------------------------------------------------------------------------------------
# An output that is an input


@pytest.fixture
def gt(synth_dir, tmp_path) -> Path:
    path = tmp_path / "charades.json"
    shutil.copy(synth_dir / "val" / "charades.json", path)
    return path


def _convert(src: list[Path], out: Path) -> list[str]:
    return ["data", "convert", "--from", "charades", *map(str, src), str(out)]


def test_data_convert_refuses_out_equal_to_in(gt, capsys):
    before = gt.read_bytes()
    err = _one_line_error(_convert([gt], gt), capsys)
    assert f"{gt}: is the same file as the input {gt}" in err
    assert gt.read_bytes() == before


def test_data_convert_refuses_a_symlink_to_the_input(gt, tmp_path, capsys):
    link = tmp_path / "out.json"
    link.symlink_to(gt)
    before = gt.read_bytes()
    assert "is the same file as the input" in _one_line_error(_convert([gt], link), capsys)
    assert gt.read_bytes() == before and link.is_symlink()


def test_data_convert_refuses_a_hard_link_of_the_input(gt, tmp_path, capsys):
    link = tmp_path / "out.json"
    os.link(gt, link)
    assert "is the same file as the input" in _one_line_error(_convert([gt], link), capsys)
    assert os.path.samefile(gt, link)


def test_data_convert_refuses_any_of_several_inputs(gt, tmp_path, capsys):
    second = tmp_path / "second.json"
    shutil.copy(gt, second)
    before = second.read_bytes()
    assert f"the input {second}" in _one_line_error(_convert([gt, second], second), capsys)
    assert second.read_bytes() == before


def test_data_convert_refuses_a_device_and_a_directory(gt, tmp_path, capsys):
    node = _char_device(tmp_path)
    assert "character device" in _one_line_error(_convert([gt], node), capsys)
    assert stat.S_ISCHR(os.stat(node).st_mode)
    folder = tmp_path / "out"
    folder.mkdir()
    assert "it is a directory" in _one_line_error(_convert([gt], folder), capsys)


def test_data_convert_still_writes_a_new_file(gt, tmp_path, capsys, umask):
    umask(0o022)
    out = tmp_path / "train.json"
    assert cli.main(_convert([gt], out)) == 0
    assert json.loads(out.read_text()) and _mode(out) == 0o644


def test_eval_refuses_an_out_folder_that_would_overwrite_its_annotation(synth_dir, tmp_path, capsys):
    out = tmp_path / "eval"
    annotation = out / "moment_retrieval" / "metrics.json"
    annotation.parent.mkdir(parents=True)
    shutil.copy(synth_dir / "val" / "charades.json", annotation)
    before = annotation.read_bytes()
    err = _one_line_error(["eval", str(SYNTH_TINY), f"data.video_root={synth_dir}", "--task", "mr", "--out", str(out),
                           f"data.val.mr.annotation={annotation}"], capsys)
    assert "vtg eval" in err and "is the same file as the input" in err
    assert annotation.read_bytes() == before


@pytest.mark.parametrize("command", ["video-llama", "vtgllm-original"])
def test_convert_weights_refuses_to_overwrite_its_source(tmp_path, capsys, command):
    out = tmp_path / "ckpt"
    out.mkdir()
    source = out / "model.safetensors"
    source.write_bytes(b"original weights")
    err = _one_line_error(["convert", command, str(source), str(out)], capsys)
    assert "is the same file as the input" in err
    assert source.read_bytes() == b"original weights"


def test_pretrain_encoder_refuses_out_equal_to_the_recipe(synth_dir, tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    shutil.copy(SYNTH_TINY, recipe)
    (tmp_path / "components").symlink_to(ROOT / "recipes" / "components")  # its defaults: resolve beside it
    before = recipe.read_bytes()
    err = _one_line_error(["data", "pretrain-encoder", str(synth_dir), "--recipe", str(recipe), "--out", str(recipe)],
                          capsys)
    assert f"vtg data pretrain-encoder: {recipe}: is the same file as the input {recipe}" in err
    assert recipe.read_bytes() == before


def test_check_not_input_edge_cases(tmp_path):
    a = tmp_path / "a.json"
    a.write_text("a")
    check_not_input(tmp_path / "new.json", [a, None, tmp_path / "missing.json"])  # nothing in common
    with pytest.raises(OutputError, match="same file"):
        check_not_input(Path(os.path.relpath(a)), [a])  # relative and absolute spellings
    with pytest.raises(OutputError, match="same file"):
        check_not_input(tmp_path / "x" / ".." / "a.json", [a])


def test_the_writes_count():
    counts = writes_counts()
    assert counts["tried"] == len(CASES) >= 20
