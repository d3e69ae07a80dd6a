"""Age, gender and ethnicity words of AI faces, read from the prompts that made them.

Two sources, each reported apart (a gap between generators is not a gap between people):

- pollinations (`poll_<n>_<yyyymmddhhmmss>_<prompt>.jpg`, spaces as `_`): "A close-up shot of
  a <age> <gender> person of <ethnicity> ...". The names are cut after 40 to 50 characters, so the
  last word may be a fragment ("genderqu"): a fragment of at least 3 letters that starts exactly
  one vocabulary word counts as that word. Ethnicity is taken only when a whole vocabulary word
  follows "person of" (the shared set's names all end before it).
- SDFD (`sdfd_<prompt-id>_<seed>.jpg`): the prompt list of the SDFD repository (gebaltso/SDFD,
  finalPrompts.csv or finalPromptsSeparated.csv: no header, first column "<prompt-id>,<seed>",
  the prompt in the columns after it) gives the prompt. Its subject noun is gender and age at once
  (GENDER_NOUNS); ethnicity words are capitalised ("Black", never "black hair"). The list glues
  stray letters to words ("gbaby girl", "aandrogynous"), so words are matched without a word
  boundary in front. Two different words of one attribute (a "[White : Black]" prompt) make
  the group "mixed".

An attribute the prompt does not state is left out of that breakdown, never guessed.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path

from trainer.config import TrainerError

Attributes = dict[str, str]  # attribute (age, gender, ethnicity) -> group
MIXED = "mixed"

POLL_AGES = ("child", "teenager", "young adult", "middle-aged", "elderly")
POLL_GENDERS = ("male", "female", "non-binary", "genderqueer")
# SDFD's eight, plus words a pollinations prompt might use; capitalised as in the prompts.
ETHNICITIES = (
    "White",
    "Black",
    "East Asian",
    "Southeast Asian",
    "South Asian",
    "Indian",
    "Middle Eastern",
    "Latino",
    "Hispanic",
    "Pacific Islander",
    "Native American",
    "African",
    "Asian",
    "Caucasian",
)
# SDFD subject noun -> (gender, age); SDFD states age only through the noun.
GENDER_NOUNS = {
    "person having male and female characteristics": ("male and female characteristics", None),
    "person having an androgynous appeal": ("androgynous appeal", None),
    "gender fluid person": ("gender fluid", None),
    "androgynous person": ("androgynous", None),
    "baby boy": ("male", "baby"),
    "baby girl": ("female", "baby"),
    "woman": ("female", "adult"),
    "man": ("male", "adult"),
    "boy": ("male", "child"),
    "girl": ("female", "child"),
}
MIN_FRAGMENT = 3

POLL_NAME = re.compile(r"^poll_\d+_\d{14}_(?P<prompt>.+)$")
SDFD_NAME = re.compile(r"^sdfd_(?P<id>[A-Za-z0-9]+-\d+)_(?P<seed>\d+)$")
SDFD_KEY = re.compile(r"^\s*(?P<id>[A-Za-z0-9]+-\d+)\s*,\s*(?P<seed>\d+)\s*$")


def _alternation(words: Iterable[str]) -> str:
    """A regex matching any of `words`, the longest first ("baby boy" before "boy")."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


NOUN_RE = re.compile(rf"(?:{_alternation(GENDER_NOUNS)})\b", re.IGNORECASE)
# In SDFD's prompts case tells the group ("Black") from a colour ("black hair").
ETHNICITY_RE = re.compile(rf"(?:{_alternation(ETHNICITIES)})\b")
# After pollinations' "person of" only an ethnicity can follow, so any case is one.
ORIGIN_RE = re.compile(rf"person of ({_alternation(ETHNICITIES)})\b", re.IGNORECASE)
CANONICAL = {w.lower(): w for w in ETHNICITIES}


def _take(text: str, vocabulary: tuple[str, ...]) -> tuple[str | None, str]:
    """The vocabulary word `text` starts with and the rest, or a trailing fragment's word."""
    for word in sorted(vocabulary, key=len, reverse=True):
        if text == word or text.startswith(word + " "):
            return word, text[len(word) + 1 :]
    starts = [w for w in vocabulary if w.startswith(text)]
    if len(text) >= MIN_FRAGMENT and len(starts) == 1:
        return starts[0], ""
    return None, text


def pollinations_attributes(stem: str) -> Attributes | None:
    """Groups of a pollinations file name (without extension); None if it is not one."""
    match = POLL_NAME.match(stem)
    if not match:
        return None
    text = match["prompt"].replace("_", " ").strip()
    subject = re.search(r"shot of an? (.*)$", text, re.IGNORECASE)
    if not subject:
        return {}
    age, rest = _take(subject[1].lower(), POLL_AGES)
    gender, rest = _take(rest, POLL_GENDERS)
    origin = ORIGIN_RE.match(rest) if gender else None
    found = {"age": age, "gender": gender, "ethnicity": CANONICAL[origin[1]] if origin else None}
    return {k: v for k, v in found.items() if v}


def read_sdfd_prompts(path: Path) -> dict[tuple[str, str], str]:
    """(prompt id, seed) -> prompt text of an SDFD prompt list; a clear error on another file."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError) as e:
        raise TrainerError(f"cannot read the SDFD prompt list {path}: {e}") from None
    prompts = {}
    for line, row in enumerate(rows, 1):
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        key = SDFD_KEY.match(row[0])
        if not key or len(row) < 2:
            raise TrainerError(
                f'{path}:{line} is not an SDFD prompt row (want "<prompt-id>,<seed>",<prompt>'
                f'..., e.g. "anB-107,3","Black, ..." as in gebaltso/SDFD finalPrompts.csv)'
            )
        prompts[(key["id"], key["seed"])] = ", ".join(row[1:])
    if not prompts:
        raise TrainerError(f"the SDFD prompt list {path} is empty")
    return prompts


def _one(values: set[str]) -> str | None:
    return None if not values else values.pop() if len(values) == 1 else MIXED


def sdfd_prompt_attributes(prompt: str) -> Attributes:
    nouns = [GENDER_NOUNS[m[0].lower()] for m in NOUN_RE.finditer(prompt)]
    found = {
        "age": _one({age for _, age in nouns if age}),
        "gender": _one({gender for gender, _ in nouns}),
        "ethnicity": _one({m[0] for m in ETHNICITY_RE.finditer(prompt)}),
    }
    return {k: v for k, v in found.items() if v}


def sdfd_attributes(stem: str, prompts: dict[tuple[str, str], str]) -> Attributes | None:
    """Groups of an SDFD file name (without extension): None if it is not one, {} if its prompt
    is not in the list."""
    match = SDFD_NAME.match(stem)
    if not match:
        return None
    prompt = prompts.get((match["id"], match["seed"]))
    return {} if prompt is None else sdfd_prompt_attributes(prompt)


def prompt_groups(
    stem: str, sdfd_prompts: dict[tuple[str, str], str] | None
) -> tuple[str, Attributes] | None:
    """("pollinations" | "sdfd", groups) of an AI image's file name, or None if the name is
    neither kind (an SDFD name has no groups when no prompt list is given)."""
    found = pollinations_attributes(stem)
    if found is not None:
        return "pollinations", found
    found = sdfd_attributes(stem, sdfd_prompts or {})
    return None if found is None else ("sdfd", found)
