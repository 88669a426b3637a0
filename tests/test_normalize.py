"""The normalizer turns informal WhatsApp Indonesian into canonical tokens."""

import pytest


@pytest.fixture(scope="module")
def normalize(kb):
    return kb.normalizer()


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("knp betis kedutan trs", "kenapa betis kedutan terus"),
        ("gmn cara mencegahnya", "bagaimana cara mencegahnya"),
        ("brp harganya kak?", "berapa harga"),
        ("ga bisa, gak mau, nggak, ngga", "tidak bisa tidak ingin tidak tidak"),
        ("udh bgt yg dgn sy tdk dr krn", "sudah banget yang dengan saya tidak dari karena"),
        ("KEDUTAN!!! di BETIS???", "kedutan di betis"),
        ("sakiiiit bangeeet", "sakit banget"),
        ("tolonggg", "tolong"),
        ("kedut2", "kedutan kedutan"),
        ("pegel2an", "pegal pegelan"),
        ("betis kedut-kedut", "betis kedutan kedutan"),
        ("sih dong ya kok deh nih kak min dok", ""),
        ("betis 😭😭 kedutan 🙏", "betis kedutan"),
        ("jam3 sore", "jam 3 sore"),
        ("piye carane", "bagaimana cara"),
        ("thanks kak", "terima kasih"),
        ("akupuntur", "akupunktur"),
        ("café naïve", "cafe naive"),
        ("how much for acupuncture", "berapa biaya for akupunktur"),
        ("thank you kak", "terima kasih"),
        ("I can't walk", "i tidak bisa walk"),
        ("matur nuwun", "terima kasih"),
        ("", ""),
        ("🙂👍", ""),
    ],
)
def test_normalizes(normalize, raw, expected):
    assert normalize(raw) == expected


def test_keeps_words_that_a_stemmer_or_stopword_list_would_destroy(normalize):
    assert normalize("kenapa cara tidak") == "kenapa cara tidak"


@pytest.mark.parametrize(
    "raw",
    ["knp betis kedutan trs", "kedut2 pegel2 sakiiit", "jam3sore, gmn?? 😀", "thanks kak udh bgt", "BETIS kram!!"],
)
def test_is_idempotent(normalize, raw):
    once = normalize(raw)
    assert normalize(once) == once


def test_sentences_split_on_sentence_ends_but_not_on_times(normalize):
    assert normalize.sentences("Halo kak. Betis kedutan terus!! kenapa ya? jam 19.30 bisa") == [
        ["halo"],
        ["betis", "kedutan", "terus"],
        ["kenapa"],
        ["jam", "19", "30", "bisa"],
    ]


def test_long_message_keeps_every_word(normalize):
    text = "betis kedutan " * 400
    assert normalize.tokens(text) == ["betis", "kedutan"] * 400


def test_particles_inside_a_phrase_do_not_hide_it(normalize):
    """Regression (fuzzing): "good ya morning" gave "good morning", which normalised again gave
    "selamat pagi": normalising was not idempotent, and the greeting was missed."""
    assert normalize("good ya morning") == normalize("good morning") == "selamat pagi"
    assert normalize("thank dong you kak") == "terima kasih"
    assert normalize("good kopi morning") == "good kopi morning"
