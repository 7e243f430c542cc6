"""Meta tests: every forward has a Shape section (the hook docs: tests/test_docs.py)."""

import inspect
from pathlib import Path

import torch

from vtgcore import interfaces
from vtgcore.catalog import default_catalog
from vtgcore.model import VideoLLM

ROOT = Path(__file__).resolve().parents[1]


def test_every_forward_documents_shapes():
    classes = [VideoLLM, *[c for _, c in inspect.getmembers(interfaces, inspect.isclass)
                           if issubclass(c, torch.nn.Module) and c.__module__ == interfaces.__name__]]
    for entry in default_catalog().entries():
        if isinstance(entry.factory, type) and issubclass(entry.factory, torch.nn.Module):
            classes.append(entry.factory)
    for cls in classes:
        for name in ("forward", "encode_video", "splice", "generate", "embed"):
            fn = cls.__dict__.get(name)
            if fn is not None:
                assert "Shape:" in (inspect.getdoc(fn) or ""), f"{cls.__name__}.{name}"


def test_readme_shows_the_two_commands_first():
    first_screen = "\n".join((ROOT / "README.md").read_text().splitlines()[:25])
    assert "make run" in first_screen and "make test" in first_screen
