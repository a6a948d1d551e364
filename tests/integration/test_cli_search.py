"""`lapnode query --text` and `--indicator` through the real CLI: any input gives results or one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.factories import lead_document
from tests.integration.test_cli_errors import PASSPHRASE, assert_one_line_error, init, run

ENV = {"LAPNODE_PASSPHRASE": PASSPHRASE}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("search") / "home"
    assert init(path, env=ENV).returncode == 0
    document = tmp_path_factory.mktemp("docs") / "lead.json"
    document.write_text(json.dumps({**lead_document(1, "bad-shop.example"), "title": "Botnet pharmacy spam"}))
    published = run(
        "publish", "lead", "--from-file", str(document), "--tlp", "green", "--home", str(path), env=ENV
    )
    assert published.returncode == 0, published.stderr
    return path


def titles(home: Path, *args: str) -> list[str]:
    result = run("query", "--json", "--home", str(home), *args)
    assert result.returncode == 0, result.stderr
    return [item["body"]["title"] for item in json.loads(result.stdout)]


@pytest.mark.parametrize(
    "words", ["botnet", "PHARM*", '"botnet" spam*', "botnet OR nothing-here", "(spam) -botnet"]
)
def test_text_with_syntax_characters_finds_by_words(home: Path, words: str) -> None:
    expected = [] if "nothing" in words else ["Botnet pharmacy spam"]
    assert titles(home, "--text", words) == expected


@pytest.mark.parametrize("words", ["***", '"', "-- ()"])
def test_text_without_words_is_one_line(home: Path, words: str) -> None:
    assert_one_line_error(run("query", "--home", str(home), "--text", words), contains="at least one word")


def test_indicator_in_another_form_finds_the_lead(home: Path) -> None:
    assert titles(home, "--indicator", "BAD-SHOP.example.") == ["Botnet pharmacy spam"]
    assert titles(home, "--indicator", "198.51.100.7", "--text", "pharmacy") == ["Botnet pharmacy spam"]
