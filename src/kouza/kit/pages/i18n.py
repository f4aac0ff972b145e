"""Messages of a screen in several languages (Japanese and English).

A :class:`Catalog` maps a message id to its text per language, read from a YAML file beside the
screen's templates::

    overview.title:
      ja: 概況
      en: Overview

``t("overview.title")`` in a template gives the text in the page's language; a message may hold
``{name}`` fields, filled from keyword arguments (``t("cases.count", count=3)``). A message
missing in one language falls back to the catalog's first language, then to its id, so a page
never fails to render for a missing translation — :meth:`Catalog.incomplete` lists such
messages, and each screen's tests assert it is empty.

The language of a request: ``?lang=`` (which also sets the ``kouza_lang`` cookie where the screen
does so), then that cookie, then ``Accept-Language``, then the catalog's first language.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from fastapi import Request

LANGUAGE_COOKIE = "kouza_lang"


class Catalog:
    """Message id → language → text."""

    def __init__(
        self, messages: Mapping[str, Mapping[str, str]], languages: Sequence[str] = ("ja", "en")
    ) -> None:
        self.messages = {key: dict(value) for key, value in messages.items()}
        self.languages = tuple(languages)

    @classmethod
    def load(cls, path: Path, languages: Sequence[str] = ("ja", "en")) -> Catalog:
        """A catalog from a YAML file of ``id: {ja: …, en: …}``."""
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of message ids")
        return cls(
            {str(key): {str(k): str(v) for k, v in value.items()} for key, value in data.items()},
            languages,
        )

    def incomplete(self) -> list[str]:
        """Message ids without a text in one of the languages."""
        return sorted(
            key
            for key, texts in self.messages.items()
            if any(not texts.get(lang) for lang in self.languages)
        )

    def text(self, key: str, language: str, **fields: Any) -> str:
        texts = self.messages.get(key)
        if texts is None:
            return key
        template = texts.get(language) or next(
            (texts[lang] for lang in self.languages if texts.get(lang)), key
        )
        return template.format(**fields) if fields else template

    def translator(self, language: str) -> Callable[..., str]:
        """``t(key, **fields)`` in ``language``."""

        def translate(key: str, **fields: Any) -> str:
            return self.text(key, language, **fields)

        return translate


def choose_language(request: Request, supported: Sequence[str]) -> str:
    """The language a request asked for, among ``supported`` (the first is the default)."""
    if not supported:
        return "ja"
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANGUAGE_COOKIE)):
        if candidate is not None and candidate in supported:
            return candidate
    header = request.headers.get("accept-language", "")
    ranked: list[tuple[float, str]] = []
    for part in header.split(","):
        piece = part.strip()
        if not piece:
            continue
        tag, _, quality = piece.partition(";q=")
        try:
            weight = float(quality) if quality else 1.0
        except ValueError:
            continue
        ranked.append((weight, tag.strip().split("-")[0].lower()))
    for _, primary in sorted(ranked, key=lambda item: -item[0]):
        if primary in supported:
            return primary
    return supported[0]
