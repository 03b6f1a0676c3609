"""Lesson files: the shipped lesson reads, its links name real pages and knobs, and a file that does
not fit is refused with the file and the line (also by ``odeviz serve --lesson``)."""
import pytest

from odeviz.cli import main
from odeviz.views import PAGES
from odeviz.views.lesson_file import DEFAULT_LESSON, LessonError, parse_lesson, read_lesson

GOOD = """---
title: Two steps
---
Before the first step: the lesson's intro.

## Crossing
link: /continuity?target=reflection&augment=false&rtol=1e-4

Trajectories **cannot** cross.

## Just text

No page here.
"""


def test_the_shipped_lesson_walks_the_paper():
    lesson = read_lesson()
    assert DEFAULT_LESSON.name == "neural-odes.md" and len(lesson.steps) >= 8
    pages = [step.page for step in lesson.steps]
    for slug in ("continuity", "classifier", "figure3", "table1", "cnf"):
        assert slug in pages
    assert "Latent" in lesson.steps[-1].title
    assert any(step.settings == {"target": "reflection", "augment": False} for step in lesson.steps)


def test_a_lesson_is_front_matter_and_steps():
    lesson = parse_lesson(GOOD, "two.md")
    assert lesson.title == "Two steps" and lesson.intro == "Before the first step: the lesson's intro."
    crossing, text = lesson.steps
    assert (crossing.title, crossing.page) == ("Crossing", "continuity")
    assert crossing.settings == {"target": "reflection", "augment": False, "rtol": 1e-4}
    assert crossing.link == "./continuity?target=reflection&augment=false&rtol=1e-4"
    assert crossing.text == "Trajectories **cannot** cross."
    assert (text.page, text.link, text.text) == (None, None, "No page here.")


@pytest.mark.parametrize("text, line, words", [
    ("## A step\n", 1, "starts with a front matter"),
    ("---\ntitle: x\n", 1, "not closed"),
    ("---\ntitle: [x\n---\n## A\n", 2, "front matter"),
    ("---\ntitle: x\nintro: a: b\n---\n## A\n", 3, "front matter"),
    ("---\nauthor: me\n---\n## A\n", 2, "needs a 'title"),
    ("---\ntitle: x\ncolour: red\n---\n## A\n", 2, "unknown front matter keys: colour"),
    ("---\ntitle: x\n---\nno steps\n", 4, "no steps"),
    ("---\ntitle: x\n---\n## A\nlink: /nowhere?depth=2\n", 5, "no page 'nowhere'"),
    ("---\ntitle: x\n---\n## A\nlink: /continuity?colour=2\n", 5, "the continuity page has no setting 'colour'"),
    ("---\ntitle: x\n---\n## A\nlink: /continuity?depth=0\n", 5, "depth must be at least 1, not 0"),
    ("---\ntitle: x\n---\n## A\nlink: /continuity?depth=two\n", 5, "depth must be a whole number, not 'two'"),
    ("---\ntitle: x\n---\n## A\nlink: /continuity?augment=maybe\n", 5, "augment must be true or false"),
    ("---\ntitle: x\n---\n## A\nlink: /continuity?target=sine\n", 5, "target must be one of cubic, reflection"),
    ("---\ntitle: x\n---\n## A\nlink: /continuity?depth=2&depth=3\n", 5, "'depth' is set twice"),
    ("---\ntitle: x\n---\n\n## A\nSome text.\nlink: /continuity\n", 7, "right after the step's heading"),
    ("---\ntitle: x\n---\n##   \n", 4, "needs a title"),
])
def test_a_bad_lesson_is_refused_naming_the_file_and_line(text, line, words):
    with pytest.raises(LessonError) as refused:
        parse_lesson(text, "mine.md")
    message = str(refused.value)
    assert message.startswith(f"mine.md, line {line}: ") and words in message, message


def test_serve_refuses_a_bad_lesson_in_one_line(tmp_path, capsys):
    lesson = tmp_path / "bad.md"
    lesson.write_text("---\ntitle: x\n---\n## A\nlink: /nowhere\n")
    assert main(["serve", "--port", "5999", "--lesson", str(lesson)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"odeviz: error: --lesson: {lesson}, line 5: no page 'nowhere'") and "\n" not in error
    assert main(["serve", "--port", "5999", "--lesson", str(tmp_path / "missing.md")]) == 2
    assert "missing.md, line 1: cannot be read" in capsys.readouterr().err


def test_every_page_is_a_lesson_link():
    for slug in PAGES:
        assert parse_lesson(f"---\ntitle: x\n---\n## A\nlink: /{slug}\n").steps[0].page == slug
