"""Finding the user's concepts in captions, singular or plural, as CLIP token positions.

The original pipeline parsed captions with spaCy and kept noun-phrase lemmas found in
a concept bank. Matching the user's own vocabulary directly needs no parser: each
entry matches its singular and plural surface forms (the last word inflected), the
longest entry wins, and matches never overlap. Positions are those of the CLIP BPE
tokens, which are computed word by word, so a word's tokens are the same in a caption
as on their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

#: Irregular plurals common in captions and in biology.
IRREGULAR_PLURALS = {
    "person": "people", "man": "men", "woman": "women", "child": "children", "mouse": "mice",
    "foot": "feet", "tooth": "teeth", "goose": "geese", "leaf": "leaves", "knife": "knives",
    "life": "lives", "half": "halves", "shelf": "shelves", "wolf": "wolves", "calf": "calves",
    "mitochondrion": "mitochondria", "nucleus": "nuclei", "nucleolus": "nucleoli",
    "bacterium": "bacteria", "fungus": "fungi", "cactus": "cacti", "vertebra": "vertebrae",
    "larva": "larvae", "antenna": "antennae", "axis": "axes", "matrix": "matrices",
    "index": "indices", "criterion": "criteria", "phenomenon": "phenomena", "stoma": "stomata",
    "cilium": "cilia", "flagellum": "flagella", "centriole": "centrioles", "hypha": "hyphae",
}
MAX_CONCEPTS_PER_CAPTION = 32
MAX_TOKENS_PER_CONCEPT = 16


def plural_forms(word: str) -> set[str]:
    """The word and its plural(s): irregular, -es/-ies rules and the plain -s."""
    forms = {word, word + "s"}
    if word in IRREGULAR_PLURALS:
        forms.add(IRREGULAR_PLURALS[word])
    if word.endswith(("s", "x", "z", "ch", "sh", "o")):
        forms.add(word + "es")
    if len(word) > 1 and word.endswith("y") and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    return forms


def read_vocabulary(paths: Iterable[str | Path]) -> list[str]:
    """Concept names from text files (one per line, ``#`` comments), merged, lower-cased, sorted.

    Sorted unique names give stable labels (the original code did the same).
    """
    names: set[str] = set()
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"concept list not found: {path}")
        for line in path.read_text(encoding="utf-8").splitlines():
            name = " ".join(line.split("#", 1)[0].lower().split())
            if name:
                names.add(name)
    if not names:
        raise ValueError("the concept list is empty: give one concept name per line")
    return sorted(names)


@dataclass(frozen=True)
class ConceptMatch:
    """One concept found in a caption: its label and its token positions (after SOT)."""

    label: int
    positions: tuple[int, ...]


class ConceptMatcher:
    """Tokenises captions with CLIP's BPE and finds vocabulary entries in them."""

    def __init__(self, vocabulary: Sequence[str], tokenizer) -> None:
        self.vocabulary = list(vocabulary)
        self.tokenizer = tokenizer
        self._phrases: dict[tuple[str, ...], int] = {}
        for label, name in enumerate(self.vocabulary):
            words = self._words(name)
            if not words:
                continue
            for last in plural_forms(words[-1]):
                self._phrases.setdefault((*words[:-1], last), label)
        self._longest = max((len(p) for p in self._phrases), default=1)

    def _words(self, text: str) -> list[str]:
        cleaned = self.tokenizer.clean_fn(text)
        return self.tokenizer.pat.findall(cleaned)  # the `regex` pattern CLIP splits words with

    def _word_ids(self, word: str) -> list[int]:
        return self.tokenizer.encode(word)

    def tokens_and_concepts(self, caption: str) -> tuple[list[int], list[ConceptMatch]]:
        """CLIP token ids ``[77]`` (as open_clip's tokenizer gives) and the concepts found."""
        words = self._words(caption)
        context = self.tokenizer.context_length
        ids: list[int] = []
        starts: list[int] = []
        for word in words:
            starts.append(len(ids) + 1)  # + 1: the SOT token comes first
            ids.extend(self._word_ids(word))
        starts.append(len(ids) + 1)
        kept = ids[: context - 2]
        tokens = [self.tokenizer.sot_token_id, *kept, self.tokenizer.eot_token_id]
        tokens += [0] * (context - len(tokens))
        matches: list[ConceptMatch] = []
        index = 0
        while index < len(words) and len(matches) < MAX_CONCEPTS_PER_CAPTION:
            for size in range(min(self._longest, len(words) - index), 0, -1):
                label = self._phrases.get(tuple(words[index : index + size]))
                if label is None:
                    continue
                positions = tuple(range(starts[index], starts[index + size]))[:MAX_TOKENS_PER_CONCEPT]
                if positions and positions[-1] <= len(kept):  # not cut off by truncation
                    matches.append(ConceptMatch(label, positions))
                index += size
                break
            else:
                index += 1
        return tokens, matches
