"""The repository stands on its own: a fresh clone with nothing beside it tests itself, and no
file, document or link reaches outside the checkout."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Spelled in two parts so this file does not name the folder it forbids.
OUTSIDE_FOLDER = re.compile(r"(\.\./)+" + "shared" + r"\b|\b" + "shared" + r"/(specs|seeds|DESIGN)")
MARKDOWN_LINK = re.compile(r"\]\(([^)\s]+)\)")
TEXT_SUFFIXES = {".py", ".md", ".toml", ".txt", ".json", ".yaml", ".yml", ".cfg", ".ini", ""}


def tracked_files() -> list[Path]:
    try:
        listing = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / name for name in listing.decode().split("\0") if name]


def test_no_file_refers_to_a_folder_outside_the_checkout() -> None:
    offenders = []
    for path in tracked_files():
        if path.suffix not in TEXT_SUFFIXES or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE_FOLDER.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_every_relative_markdown_link_resolves_inside_the_checkout() -> None:
    broken = []
    documents = [p for p in tracked_files() if p.suffix == ".md"]
    assert documents
    for document in documents:
        for target in MARKDOWN_LINK.findall(document.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # an absolute URL or an anchor in the same page
            resolved = (document.parent / target.split("#")[0]).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{document.relative_to(ROOT)}: {target}")
    assert not broken, "\n".join(broken)


def test_the_test_data_is_inside_the_repository() -> None:
    vectors = ROOT / "tests" / "data" / "merkle_vectors.json"
    assert vectors.is_file()
    assert vectors in tracked_files() or not (ROOT / ".git").exists()
