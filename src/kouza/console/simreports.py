"""The simulator's reports as the console finds them, and Markdown rendered safely.

``kouza simulate --out DIR`` writes a folder of ``summary.json``, ``results.json``, PNG charts,
``comparison.md`` and a self-contained ``report.html`` (:mod:`kouza.sim.report`); the default
``DIR`` is ``var/simulation``. The console lists every folder *below* the configured var dir
(up to :data:`MAX_DEPTH` levels) holding one of :data:`MARKERS`, and serves only the files of
those folders whose suffix is in :data:`SERVED` — never the var dir's own files (the SQLite
database, the generated secret), never a path that resolves outside the var dir (``..``,
absolute paths, symbolic links pointing out): :func:`resolve` refuses them all.

Markdown is rendered by markdown-it-py with raw HTML disabled (it is escaped) and its own link
validation (no ``javascript:`` or ``data:`` links), so a report cannot inject markup.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from markdown_it import MarkdownIt

MARKERS = ("summary.json", "comparison.md", "report.md", "report.html")
"""A folder holding one of these is a simulator report."""
SERVED = {
    ".md": "text/markdown; charset=utf-8",
    ".png": "image/png",
    ".json": "application/json",
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
}
"""The files a report folder may serve, with their media types."""
MAX_DEPTH = 3
MAX_FOLDERS = 200
MAX_MARKDOWN = 2_000_000
"""The largest Markdown file rendered on a page (bytes); larger ones are only downloadable."""

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(text: str, *, below: int = 2) -> str:
    """Markdown → HTML, raw HTML escaped and unsafe links dropped; headings moved down so a
    ``#`` becomes an ``<h{below + 1}>`` under the page's own headings."""
    tokens = _markdown.parse(text)
    for token in tokens:
        if token.type in ("heading_open", "heading_close"):
            token.tag = f"h{min(int(token.tag[1:]) + below, 6)}"
    html: str = _markdown.renderer.render(tokens, _markdown.options, {})
    return html


@dataclass(frozen=True)
class ReportFile:
    name: str
    path: str
    """Relative to the var dir, with ``/`` separators (what the download URL carries)."""
    size: int


@dataclass(frozen=True)
class SimReport:
    """One folder of simulator output."""

    path: str
    modified: datetime
    files: tuple[ReportFile, ...]

    def of_suffix(self, suffix: str) -> list[ReportFile]:
        return [f for f in self.files if f.name.endswith(suffix)]


def find_reports(root: Path) -> list[SimReport]:
    """Report folders below ``root``, newest first."""
    base = root.resolve()
    if not base.is_dir():
        return []
    found: list[SimReport] = []
    for folder in _folders(base, 1):
        if not any((folder / marker).is_file() for marker in MARKERS):
            continue
        files = tuple(
            ReportFile(item.name, _relative(base, item), item.stat().st_size)
            for item in sorted(folder.iterdir())
            if item.is_file() and item.suffix.lower() in SERVED and _inside(base, item)
        )
        modified = datetime.fromtimestamp(folder.stat().st_mtime, UTC)
        found.append(SimReport(_relative(base, folder), modified, files))
        if len(found) >= MAX_FOLDERS:
            break
    return sorted(found, key=lambda report: report.modified, reverse=True)


def _folders(folder: Path, depth: int) -> list[Path]:
    if depth > MAX_DEPTH:
        return []
    out: list[Path] = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink() and not child.name.startswith("."):
            out.append(child)
            out.extend(_folders(child, depth + 1))
    return out


def _inside(base: Path, path: Path) -> bool:
    return path.resolve().is_relative_to(base)


def _relative(base: Path, path: Path) -> str:
    return path.relative_to(base).as_posix()


def resolve(root: Path, relative: str) -> Path | None:
    """The file ``relative`` names inside a report folder below ``root``, or None when it is
    not one: outside ``root`` (``..``, absolute, a link out), in ``root`` itself, not a served
    suffix, not in a report folder, or missing."""
    base = root.resolve()
    parts = PurePosixPath(relative).parts
    if (
        not relative
        or "\\" in relative
        or "\x00" in relative
        or relative.startswith("/")
        or any(part in ("..", ".") or part.startswith(".") for part in parts)
        or len(parts) < 2
    ):
        return None
    candidate = (base / Path(*parts)).resolve()
    if not candidate.is_relative_to(base) or candidate.parent == base:
        return None
    if candidate.suffix.lower() not in SERVED or not candidate.is_file():
        return None
    folder = candidate.parent
    if not any((folder / marker).is_file() for marker in MARKERS):
        return None
    return candidate
