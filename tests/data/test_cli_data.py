"""`vtg data synth` and `vtg data convert` from the command line."""

import hashlib
import json

from vtgcore.apps import cli
from vtgcore.data.format_convert import SOURCES
from vtgcore.data.formats import ALL_FORMATS, load_vtg_it


def _digest(folder):
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "meta.json"):
        h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_synth_then_convert(tmp_path, capsys):
    args = ["data", "synth", "--seed", "5", "--train", "2", "--val", "2"]
    assert cli.main([*args[:2], str(tmp_path / "a"), *args[2:]]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["seed"] == 5 and summary["videos"] == {"train": 2, "val": 2}
    assert cli.main([*args[:2], str(tmp_path / "b"), *args[2:]]) == 0
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    out = tmp_path / "mr_train.json"
    assert cli.main(["data", "convert", "--from", "charades", str(tmp_path / "a" / "val" / "charades.json"), str(out)]) == 0
    assert "training items" in capsys.readouterr().out
    items = load_vtg_it(out)
    assert items and all("<time>" in t["a"] for item in items for t in item.turns)


def test_cli_choices_match_the_library():
    parser = cli.build_parser()
    data = next(a for a in parser._subparsers._group_actions[0].choices["data"]._actions if a.dest == "data_command")
    convert = {a.dest: a for a in data.choices["convert"]._actions}
    check = {a.dest: a for a in data.choices["check"]._actions}
    assert set(convert["source"].choices) == set(SOURCES)
    assert set(check["format"].choices) == set(ALL_FORMATS)
