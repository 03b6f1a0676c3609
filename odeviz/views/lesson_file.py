"""A lesson file: a Markdown file with a YAML front matter, read into a :class:`Lesson`.

    ---
    title: Neural ODEs in six steps
    ---
    ## A ResNet is Euler's method
    link: /continuity?method=euler&fixed_steps=4

    Text of the step, in Markdown…

    ## The next step …

Each ``## heading`` starts a step. Its first line may be ``link:`` and a page's shareable link, the
page slug and its settings as a URL query in the knobs' public names (those of the CLI's options,
:mod:`odeviz.experiments.knobs`); the lesson shows that page with those settings. A step without a
link is text only. A file that does not fit is refused with a :class:`LessonError` naming the file
and the line.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import yaml

DEFAULT_LESSON = Path(__file__).parent / "lessons" / "neural-odes.md"


class LessonError(ValueError):
    """A lesson file that cannot be used: ``str()`` is "FILE, line N: what is wrong"."""

    def __init__(self, name: str, line: int, problem: str) -> None:
        super().__init__(f"{name}, line {line}: {problem}")


@dataclass(frozen=True)
class Step:
    title: str
    text: str  # Markdown
    page: str | None = None  # a slug of odeviz.views.PAGES; None: text only
    settings: dict = field(default_factory=dict)  # param name -> value, for the page's experiment
    query: str = ""  # the settings as the link gave them

    @property
    def link(self) -> str | None:
        """The step's page as a shareable link (relative to the server's root)."""
        return None if self.page is None else f"./{self.page}" + (f"?{self.query}" if self.query else "")


@dataclass(frozen=True)
class Lesson:
    title: str
    intro: str
    steps: tuple[Step, ...]


def _read_link(text: str, name: str, line: int) -> tuple[str, dict, str]:
    from ..experiments.knobs import knobs, parse_knob, refusal
    from . import PAGES  # the page modules sit beside this one

    parts = urlsplit(text.strip())
    slug = parts.path.strip("/").removeprefix(".").strip("/")
    if slug not in PAGES:
        raise LessonError(name, line, f"no page {slug!r} (the pages: {', '.join(PAGES)})")
    experiment_class = PAGES[slug].experiment_class
    public = {knob.public: knob for knob in knobs(experiment_class)}
    settings: dict = {}
    for key, value in parse_qsl(parts.query, keep_blank_values=True, strict_parsing=False):
        if key not in public:
            raise LessonError(name, line, f"the {slug} page has no setting {key!r} (its settings: {', '.join(public)})")
        knob = public[key]
        if knob.param in settings:
            raise LessonError(name, line, f"{key!r} is set twice")
        try:  # read as a page reads its link
            settings[knob.param] = parse_knob(experiment_class, knob, value)
        except (ValueError, TypeError) as error:
            raise LessonError(name, line, f"{key} {refusal(error)[1]}") from None
    return slug, settings, parts.query


def _front_matter(lines: list[str], name: str) -> tuple[dict, int]:
    """The YAML between the first two ``---`` lines, and the index of the line after it."""
    if not lines or lines[0].strip() != "---":
        raise LessonError(name, 1, "a lesson starts with a front matter: a line '---', 'title: …', and '---'")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise LessonError(name, 1, "the front matter is not closed by a line '---'")
    try:
        meta = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise LessonError(name, 2 + (mark.line if mark else 0), f"front matter: {problem}") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("title"), str) or not meta["title"].strip():
        raise LessonError(name, 2, "the front matter needs a 'title: …'")
    unknown = set(meta) - {"title", "intro"}
    if unknown:
        raise LessonError(name, 2, f"unknown front matter keys: {', '.join(sorted(map(str, unknown)))} (known: title, intro)")
    return meta, end + 1


def parse_lesson(text: str, name: str = "lesson") -> Lesson:
    """The lesson in ``text`` (``name`` is how errors call the file)."""
    lines = text.splitlines()
    meta, start = _front_matter(lines, name)
    intro, steps, current = [], [], None  # current: [title, link, text lines]
    for number, line in enumerate(lines[start:], start=start + 1):
        if line.startswith("## "):
            current = [line[3:].strip(), None, []]
            if not current[0]:
                raise LessonError(name, number, "a step's heading needs a title after '## '")
            steps.append(current)
        elif current is None:
            intro.append(line)
        elif line.lower().startswith("link:"):
            if current[1] is not None or any(text.strip() for text in current[2]):
                raise LessonError(name, number, "'link:' goes on the line right after the step's heading, once")
            current[1] = _read_link(line[5:], name, number)
        else:
            current[2].append(line)
    if not steps:
        raise LessonError(name, len(lines), "no steps: each step starts with a line '## Its title'")
    return Lesson(
        title=meta["title"].strip(),
        intro=str(meta.get("intro") or "\n".join(intro)).strip(),
        steps=tuple(Step(title, "\n".join(body).strip(), *(link or (None, {}, ""))) for title, link, body in steps),
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise LessonError(str(path), 1, f"cannot be read ({getattr(error, 'strerror', None) or error})") from None


def read_lesson(path: str | Path = DEFAULT_LESSON) -> Lesson:
    """The lesson in the file at ``path`` (LessonError naming the file if it cannot be read or used).
    Its links are checked against the pages' knobs, so this imports the pages (and torch)."""
    path = Path(path)
    return parse_lesson(_read_text(path), str(path))


def lesson_title(path: str | Path = DEFAULT_LESSON) -> str:
    """The title in the front matter of the lesson at ``path``, without reading its steps (nor
    importing a page): what an index lists before anyone opens the lesson."""
    path = Path(path)
    meta, _ = _front_matter(_read_text(path).splitlines(), str(path))
    return meta["title"].strip()
