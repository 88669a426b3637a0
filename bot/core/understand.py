"""The learned intent model: a linear classifier over character and word n-grams.

A message is seen three ways (its *views*): the raw text as typed, its words repaired against
the knowledge base's vocabulary (slang normalized, typos corrected), and the consonant skeleton
of those words, which is how people type in a hurry ("hrg akpntr brp" is "harga akupuntur
berapa" without its vowels). Each view becomes TF-IDF weighted n-grams; a linear support vector
machine (scikit-learn's LinearSVC) learns a weight per n-gram and intent from the knowledge
base's examples, the staff-taught examples and the out-of-scope file.

Training needs scikit-learn; answering does not: a trained model is kept as plain arrays
(vocabularies, IDF weights, coefficients) and scores a message with a dictionary lookup per
n-gram and one small matrix product. The arrays are what the on-disk cache stores, so a warm
start neither trains nor imports scikit-learn. Same examples and settings, same model: the
solver's seed is fixed and the examples keep their file order.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np

# Bump when the features or the training change: cached models of another version are stale.
MODEL_VERSION = 1
_VOWELS = re.compile(r"[aiueo]+")
_DOUBLES = re.compile(r"(.)\1+")
_NON_WORD = re.compile(r"[^a-z0-9]+")
_NO_COLUMNS = np.zeros(0, dtype=np.intp)
_WORD_MEMO_LIMIT = 100_000


@dataclass(frozen=True)
class Doc:
    """A message as the model reads it: the raw text (lowercased, punctuation as spaces) and
    its repaired vocabulary words."""

    raw: str
    words: tuple[str, ...]

    @classmethod
    def of(cls, text: str, words: Sequence[str], limit: int | None = None) -> Doc:
        """With `limit`, a long message is read by its first and last words: where stories set
        the scene and ask the question."""
        return cls(" ".join(_window(_NON_WORD.sub(" ", text.lower()).split(), limit)), tuple(_window(words, limit)))


def _window(words: Sequence[str], limit: int | None) -> Sequence[str]:
    if limit is None or len(words) <= limit:
        return words
    half = limit // 2
    return [*words[:half], *words[len(words) - (limit - half) :]]


def char_ngrams(doc: Doc) -> list[str]:
    """Character 2- to 5-grams inside word boundaries, of the raw text and the repaired words."""
    return [gram for word in _char_words(doc) for gram in word_char_ngrams(word)]


def _char_words(doc: Doc) -> list[str]:
    return [*doc.raw.split(), *doc.words]


def word_char_ngrams(word: str) -> list[str]:
    """One word's character 2- to 5-grams, the word padded with a space on each side."""
    padded = f" {word} "
    size = len(padded)
    return [padded[i : i + n] for n in range(2, 6) if size >= n for i in range(size - n + 1)]


def word_ngrams(doc: Doc) -> list[str]:
    """Repaired words and pairs of neighbouring words."""
    words = doc.words
    return [*words, *(f"{a} {b}" for a, b in pairwise(words))]


def skeletons(doc: Doc) -> list[str]:
    """Each repaired word's consonants, doubled letters merged ("kedutan" -> "kdtn")."""
    return ["~" + (_DOUBLES.sub(r"\1", _VOWELS.sub("", word)) or word) for word in doc.words if not word.isdigit()]


ANALYZERS: tuple[Callable[[Doc], list[str]], ...] = (char_ngrams, word_ngrams, skeletons)


@dataclass(frozen=True)
class FeatureGroup:
    """One TF-IDF vectorizer, fitted: n-gram -> column, and each column's IDF weight."""

    vocabulary: Mapping[str, int]
    idf: np.ndarray


class IntentModel:
    """A trained linear model as plain arrays: `margins(doc)` is its decision function."""

    def __init__(self, classes: Sequence[str], groups: Sequence[FeatureGroup], coef: np.ndarray, intercept: np.ndarray):
        self.classes = tuple(classes)
        self.groups = tuple(groups)
        # Columns are laid out group after group; coef is (columns x classes) so that the
        # columns a message uses are one row gather.
        self.offsets = np.cumsum([0, *(len(g.idf) for g in groups)])[:-1]
        self.coef = np.ascontiguousarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        # Each word's character n-gram columns, remembered: most words of a message were seen
        # before, and the n-grams of a word are most of the work of reading a message.
        self._word_columns: dict[str, np.ndarray] = {}

    def features(self, doc: Doc) -> tuple[np.ndarray, np.ndarray]:
        """(columns, values) of the message's TF-IDF vector: sublinear term frequency times
        IDF, each group scaled to unit length (scikit-learn's TfidfVectorizer, exactly)."""
        chars = [self._char_columns(word) for word in _char_words(doc)]
        found = [np.concatenate(chars) if chars else _NO_COLUMNS]
        for analyzer, group in zip(ANALYZERS[1:], self.groups[1:], strict=True):
            vocabulary = group.vocabulary
            found.append(np.array([vocabulary[g] for g in analyzer(doc) if g in vocabulary], dtype=np.intp))
        columns, values = [], []
        for group, offset, used in zip(self.groups, self.offsets, found, strict=True):
            if not len(used):
                continue
            unique, counts = np.unique(used, return_counts=True)
            weights = (1.0 + np.log(counts)) * group.idf[unique]
            columns.append(unique + offset)
            values.append(weights / np.sqrt(np.dot(weights, weights)))
        if not columns:
            return _NO_COLUMNS, np.zeros(0)
        return np.concatenate(columns), np.concatenate(values)

    def forget(self) -> None:
        """Forget the remembered n-grams of words (a benchmark times a message as if new)."""
        self._word_columns = {}

    def _char_columns(self, word: str) -> np.ndarray:
        found = self._word_columns.get(word)
        if found is None:
            vocabulary = self.groups[0].vocabulary
            found = np.array([vocabulary[g] for g in word_char_ngrams(word) if g in vocabulary], dtype=np.intp)
            if len(self._word_columns) >= _WORD_MEMO_LIMIT:
                self._word_columns = {}
            self._word_columns[word] = found
        return found

    def margins(self, doc: Doc) -> np.ndarray:
        """The decision function: one signed distance per class (in `classes` order)."""
        columns, values = self.features(doc)
        if not len(columns):
            return self.intercept.copy()
        return self.intercept + values @ self.coef[columns]

    def arrays(self) -> dict[str, np.ndarray]:
        """Everything the model is, as arrays that numpy saves without pickling."""
        out = {"classes": np.array(self.classes), "coef": self.coef, "intercept": self.intercept}
        for index, group in enumerate(self.groups):
            grams = sorted(group.vocabulary, key=group.vocabulary.__getitem__)
            out[f"grams{index}"] = np.array(grams, dtype=str)
            out[f"idf{index}"] = group.idf
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> IntentModel:
        """The inverse of `arrays`; raises ValueError when they do not make a model."""
        groups = []
        for index in range(len(ANALYZERS)):
            grams, idf = arrays[f"grams{index}"].tolist(), np.asarray(arrays[f"idf{index}"], dtype=np.float64)
            if len(grams) != len(idf):
                raise ValueError(f"feature group {index}: {len(grams)} n-grams but {len(idf)} weights")
            groups.append(FeatureGroup({g: i for i, g in enumerate(grams)}, idf))
        classes, coef, intercept = arrays["classes"].tolist(), arrays["coef"], arrays["intercept"]
        if coef.shape != (sum(len(g.idf) for g in groups), len(classes)) or intercept.shape != (len(classes),):
            raise ValueError(f"coefficients {coef.shape} do not fit {len(classes)} classes")
        if not (np.isfinite(coef).all() and np.isfinite(intercept).all()):
            raise ValueError("coefficients are not finite")
        return cls(classes, groups, coef, intercept)


@dataclass(frozen=True)
class Training:
    """What a model is trained from: labelled documents and the solver's regularization."""

    docs: tuple[Doc, ...]
    labels: tuple[str, ...]
    c: float

    def fingerprint(self) -> str:
        """A hash of everything that decides the model: same fingerprint, same model."""
        digest = hashlib.sha256(json.dumps([MODEL_VERSION, self.c]).encode())
        for doc, label in zip(self.docs, self.labels, strict=True):
            digest.update(json.dumps([label, doc.raw, doc.words], ensure_ascii=False).encode())
        return digest.hexdigest()[:32]


def train(training: Training) -> IntentModel:
    """Fit the TF-IDF views and a LinearSVC (fixed seed) with scikit-learn."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion
    from sklearn.svm import LinearSVC

    if len(set(training.labels)) < 2:
        raise ValueError("the intent model needs examples of at least two intents")
    union = FeatureUnion(
        [(f.__name__, TfidfVectorizer(analyzer=f, sublinear_tf=True, lowercase=False)) for f in ANALYZERS]
    )
    features = union.fit_transform(training.docs)
    svm = LinearSVC(C=training.c, random_state=0, max_iter=5000)
    svm.fit(features, training.labels)
    groups = [FeatureGroup(dict(v.vocabulary_), v.idf_.astype(np.float64)) for _, v in union.transformer_list]
    coef, intercept = svm.coef_, svm.intercept_
    if len(svm.classes_) == 2:
        # A two-class LinearSVC keeps one row for the second class: score the first as its negative.
        coef, intercept = np.vstack([-coef, coef]), np.array([-intercept[0], intercept[0]])
    return IntentModel([str(c) for c in svm.classes_], groups, coef.T, intercept)


class ModelSource:
    """Where trained models come from: `get(training)` returns the model for those inputs.
    This one keeps the last few in memory; the application adds a cache on disk (bot.models)."""

    def __init__(self, keep: int = 4):
        self._keep = keep
        self._models: dict[str, IntentModel] = {}

    def get(self, training: Training) -> IntentModel:
        key = training.fingerprint()
        model = self._models.get(key)
        if model is None:
            model = self.load(key, training)
            while len(self._models) >= self._keep:
                self._models.pop(next(iter(self._models)))
            self._models[key] = model
        return model

    def load(self, key: str, training: Training) -> IntentModel:
        """A model not held in memory: trained here (subclasses look on disk first)."""
        return train(training)


IN_MEMORY = ModelSource()
