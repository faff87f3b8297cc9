"""Near-duplicates between texts: the same sentence lightly edited, or one skeleton with its nouns swapped.

Two texts are near-duplicates when their word sequences (normalised as the behavioural suite compares
texts: case, apostrophes and punctuation ignored) match in at least ``THRESHOLD`` of their words in order
(difflib's ratio on word lists: 2 x matched words / all words). "The X was great but the Y was awful"
against "The A was great but the B was awful" is 0.8; two natural sentences on one topic rarely pass 0.6.
Pairs are found through shared word bigrams first, so a corpus of 15,000 texts takes seconds, not the
hundred million comparisons of every pair.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from difflib import SequenceMatcher

from training.behavioural import normalise

THRESHOLD = 0.75
COVERAGE = 0.8  # a short sentence carried by a longer text with at most one word in five changed
COMMON_BIGRAM_ROWS = 100  # bigrams in more texts than this ("of the", "it is") find no useful pairs


def words(text: str) -> list[str]:
    return normalise(text).split()


def similarity(a: list[str], b: list[str], at_least: float = 0.0) -> float:
    """difflib's ratio of the two word lists; 0.0 as soon as its cheap upper bounds show it is under
    ``at_least`` (most candidate pairs: that keeps a corpus-wide check to seconds)."""
    matcher = SequenceMatcher(None, a, b, autojunk=False)
    if matcher.real_quick_ratio() < at_least or matcher.quick_ratio() < at_least:
        return 0.0
    return matcher.ratio()


def _candidate_pairs(tokens: list[list[str]], first_of_b: int) -> Counter:
    """Pairs (i, j) that share at least one uncommon word bigram, with i < first_of_b <= j when comparing
    two collections (or any i < j within one, ``first_of_b`` 0)."""
    index: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, sequence in enumerate(tokens):
        for gram in set(zip(sequence, sequence[1:])):
            index[gram].append(i)
    shared: Counter = Counter()
    for rows in index.values():
        if len(rows) > COMMON_BIGRAM_ROWS:
            continue
        for x, a in enumerate(rows):
            for b in rows[x + 1:]:
                if not first_of_b or (a < first_of_b <= b):
                    shared[(a, b)] += 1
    return shared


def near_duplicate_pairs(texts: list[str], threshold: float = THRESHOLD) -> list[tuple[int, int, float]]:
    """(i, j, similarity) for every pair of ``texts`` at or above ``threshold`` (exact repeats included)."""
    tokens = [words(t) for t in texts]
    pairs, seen = [], {}
    for i, sequence in enumerate(tokens):
        key = " ".join(sequence)
        if key in seen:
            pairs.append((seen[key], i, 1.0))
        seen.setdefault(key, i)
    for (a, b), shared in _candidate_pairs(tokens, 0).items():
        if shared < 2 and min(len(tokens[a]), len(tokens[b])) > 4:
            continue  # two longer texts alike in 75% of their words in order share more than one bigram
        if tokens[a] != tokens[b] and (ratio := similarity(tokens[a], tokens[b], threshold)) >= threshold:
            pairs.append((a, b, round(ratio, 3)))
    return sorted(pairs)


def coverage(needle: list[str], text: list[str]) -> float:
    """The share of ``needle``'s words that ``text`` holds in the same order: 1.0 when the needle appears in
    the text whole, high when a longer text carries the needle with a word or two changed."""
    matched = sum(block.size for block in SequenceMatcher(None, needle, text, autojunk=False).get_matching_blocks())
    return matched / len(needle) if needle else 0.0


def near_copies(needles: list[str], haystack: list[str], threshold: float = THRESHOLD,
                covered: float = COVERAGE) -> list[tuple[int, int, float]]:
    """(needle index, haystack index, similarity) for every needle that is a near-duplicate of a haystack
    text or is carried by one (``coverage``: its words, in order, inside a longer text, a word or two
    changed: ``coverage`` at least ``covered``). For keeping test sentences out of training data."""
    tokens = [words(t) for t in needles] + [words(t) for t in haystack]
    first = len(needles)
    found = []
    for (a, b), _ in _candidate_pairs(tokens, first).items():
        ratio = similarity(tokens[a], tokens[b])
        carried = coverage(tokens[a], tokens[b]) if len(tokens[a]) >= 4 else 0.0
        if ratio >= threshold or carried >= covered:
            found.append((a, b - first, round(max(ratio, carried), 3)))
    short = {" ".join(t): i for i, t in enumerate(tokens[:first]) if len(t) < 2}  # one-word needles have no bigram
    for j, sequence in enumerate(tokens[first:]):
        if " ".join(sequence) in short:
            found.append((short[" ".join(sequence)], j, 1.0))
    return sorted(set(found))
