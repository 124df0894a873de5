"""Corpus cleaning: each domain's cleaner on inline fixtures, reading errors, stats, atomicity."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd
import pytest

from babyteach.data.clean import CLEANERS, clean_corpus, normalise
from babyteach.data.corpora import BABYLM_DOMAINS, SPLITS
from babyteach.errors import InputError

# --- the cleaners -----------------------------------------------------------------------------

# (domain, raw lines as in the BabyLM files, expected clean lines)
CASES = [
    (
        "childes",
        [
            "= = = childes/CHILDES_NA/Soderstrom/The/000623c.cha = = =",
            "*MOT:\tdo you want some more juice?",
            "%add:\tCHI",
            "*CHI:\tmore juice [laughs].",
            "%int:\tsoftly",
            "*CHI:\t[babbles].",
            "*FAT:\tJwww [friend], come here!",
            "*MOT:\txxx put it there.",
            "*PAR1: what's that. *PAR2: a dog.",
            "[playing with toys]",
            "*CHI:",
            "it says here.",
            "",
        ],
        [
            "do you want some more juice?",
            "more juice.",
            "Jwww, come here!",
            "put it there.",
            "what's that.",
            "a dog.",
            "it says here.",
        ],
    ),
    (
        "aochildes",
        ["what's that?", "Is it a  doggie", "look at the ball ."],
        ["what's that?", "Is it a doggie", "look at the ball ."],
    ),
    (
        "switchboard",
        ["A:\tOkay.", "B:\tWell,  I think  so,", "and then some.", "A:\t", "B:\tUh-huh."],
        ["Okay.", "Well, I think so,", "and then some.", "Uh-huh."],
    ),
    (
        "simple_wiki",
        [
            "= = = Confetti = = =",
            "Confetti are small pieces of paper.[1]",
            "Music &amp; Musicians &lt;br&gt; of 1980.",
            "Other websites. [[Category:Japanese eras]]",
            "A [[river bank|bank]] and [[Paris]].",
            "= = = .\ufffd = = =",
            "",
            "Alan Walker = = = Alan Walker (born 1997) is a DJ. The sum x = 5.",
        ],
        [
            "Confetti",
            "Confetti are small pieces of paper.",
            "Music & Musicians of 1980.",
            "Other websites.",
            "A bank and Paris.",
            "Alan Walker",
            "Alan Walker (born 1997) is a DJ. The sum x = 5.",
        ],
    ),
    (
        "gutenberg",
        [
            "= = = PG53602 = = =",
            "\u201cIt is devilish,\u201d he frankly assented.",
            "for _not_ going there",
            "[Illustration]",
            "[Illustration: The coyote was too quick.] He ran.[1]",
            "TO MRS. J. BOSWELL. \u2018_March 17, 1881._ \u2018The Hindus",
        ],
        [
            '"It is devilish," he frankly assented.',
            "for not going there",
            "He ran.",
            "TO MRS. J. BOSWELL. 'March 17, 1881. 'The Hindus",
        ],
    ),
    (
        "open_subtitles",
        [
            "- Good-bye.",
            "[laughs] I'm sorry. [sobbing] [\u00b6\u00b6\u00b6] All right.",
            "NARRATOR: Once upon a time.",
            "LILY [OVER SPEAKERPHONE]: Hello?",
            "(SIGHS) Fine.",
            "So when you think of Robert {\\and you think of}me, do you?",
            "{\\pos(192,220)}Look out!",
            "\u266a La la la \u266a",
            "<i>Where are you?</i>",
            "[music]",
            "Everybody's results are different. - I heard the doctor. - Okay.",
        ],
        [
            "Good-bye.",
            "I'm sorry. All right.",
            "Once upon a time.",
            "Hello?",
            "Fine.",
            "So when you think of Robert me, do you?",
            "Look out!",
            "La la la",
            "Where are you?",
            "Everybody's results are different. - I heard the doctor. - Okay.",
        ],
    ),
    (
        "qed",
        [
            "&gt;&gt; Hello everyone.",
            "00:00:01,000 --> 00:00:04,000",
            "- What's up?",
            "&amp;lt;i&amp;gt;Welcome back&amp;lt;/i&amp;gt;",
            "(Laughter)",
        ],
        ["Hello everyone.", "What's up?", "Welcome back", "(Laughter)"],
    ),
    (
        "cbt",
        [
            "_BOOK_TITLE_ : Andrew_Lang___Prince_Prigio.txt.out",
            "`` What a dreadful thing ! '' said the queen .",
            "With almost everything else , they wanted one thing : they had no children .",
            "-LRB- So they said . -RRB- It was n't fair , and they 're sad .",
        ],
        [
            '"What a dreadful thing!" said the queen.',
            "With almost everything else, they wanted one thing: they had no children.",
            "(So they said.) It wasn't fair, and they're sad.",
        ],
    ),
    (
        "bnc_spoken",
        ["Here, here please.", "\u2018Come.\u2019", ".", "Er, the debate  this afternoon."],
        ["Here, here please.", "'Come.'", "Er, the debate this afternoon."],
    ),
    (
        "children_stories",
        ["    Once upon a time there was a bear.", "", "The End"],
        ["Once upon a time there was a bear.", "The End"],
    ),
]


@pytest.mark.parametrize(("domain", "raw", "expected"), CASES, ids=[c[0] for c in CASES])
def test_cleaner_fixture(domain, raw, expected):
    assert list(CLEANERS[domain](raw)) == expected


def test_registry_has_one_cleaner_per_domain_of_every_release():
    assert set(CLEANERS) == {d for domains in BABYLM_DOMAINS.values() for d in domains}
    # same text format under two names: one cleaner
    assert CLEANERS["simple_wiki"] is CLEANERS["simple_wikipedia"] is CLEANERS["wikipedia"]
    assert CLEANERS["childes"] is CLEANERS["aochildes"]


def test_normalise_unicode_and_whitespace_but_not_case():
    raw = "\ufeffThe \ufb01sh\u00a0said\t\u201cHi\u201d \u2018there\u2019\u200b \uff21BC\u2026  Done\r"
    assert normalise(raw) == "The fish said \"Hi\" 'there' ABC... Done"


# --- a tiny corpus on disk -------------------------------------------------------------------

PLAIN = "Hello there.\nGood night moon.\n"  # 2 lines, 5 words
CHILDES = "*MOT:\tlook at the doggie.\n%add:\tCHI\n*CHI:\tdoggie!\n"  # 2 lines, 5 words after cleaning


def write_corpus(root: Path, release: str = "2024", lines_per_file: int = 1) -> Path:
    """One file per domain and split: PLAIN (CHILDES for childes) repeated lines_per_file times."""
    root.mkdir(parents=True, exist_ok=True)
    for domain in BABYLM_DOMAINS[release]:
        for split in SPLITS:
            text = CHILDES if domain == "childes" else PLAIN
            (root / f"{domain}.{split}").write_text(text * lines_per_file, encoding="utf-8")
    return root


def run(tmp_path: Path, **kwargs) -> pd.DataFrame:
    kwargs.setdefault("release", "2024")
    return clean_corpus(tmp_path / "raw", tmp_path / "clean", tmp_path / "stats.csv", **kwargs)


def test_stats_hand_counted_and_files_written(tmp_path):
    write_corpus(tmp_path / "raw")
    stats = run(tmp_path)
    domains = BABYLM_DOMAINS["2024"]
    expected = pd.DataFrame(
        [(d, s, 2, 5) for d in domains for s in SPLITS], columns=["domain", "split", "lines", "words"]
    )
    pd.testing.assert_frame_equal(stats, expected)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "stats.csv", dtype={"split": str}), expected)
    clean = tmp_path / "clean"
    assert (clean / "childes.dev").read_text(encoding="utf-8") == "look at the doggie.\ndoggie!\n"
    assert (clean / "bnc_spoken.test").read_text(encoding="utf-8") == PLAIN
    assert sorted(p.name for p in clean.iterdir()) == sorted(f"{d}.{s}" for d in domains for s in SPLITS)


def test_release_2023_cleans_its_ten_domains(tmp_path):
    write_corpus(tmp_path / "raw", release="2023")
    stats = run(tmp_path, release="2023")
    assert len(stats) == 10 * len(SPLITS)
    assert stats["words"].sum() == 5 * len(stats)


def test_max_lines_per_file_keeps_first_cleaned_lines(tmp_path):
    write_corpus(tmp_path / "raw", lines_per_file=3)  # 6 clean lines per file
    stats = run(tmp_path, max_lines_per_file=3)
    assert set(stats["lines"]) == {3}
    # childes: the %add line is skipped, not counted against the limit
    kept = (tmp_path / "clean" / "childes.train").read_text(encoding="utf-8")
    assert kept == "look at the doggie.\ndoggie!\nlook at the doggie.\n"
    assert stats.set_index(["domain", "split"]).loc[("childes", "train"), "words"] == 9


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_max_lines_per_file_must_be_positive_int(tmp_path, bad):
    write_corpus(tmp_path / "raw")
    with pytest.raises(InputError, match="corpus.max_lines_per_file"):
        run(tmp_path, max_lines_per_file=bad)


def test_decode_error_names_file_and_line(tmp_path):
    raw = write_corpus(tmp_path / "raw")
    (raw / "gutenberg.dev").write_bytes(b"ok\n\xff\xfe bad\n")
    with pytest.raises(InputError) as err:
        run(tmp_path)
    message = str(err.value)
    assert str(raw / "gutenberg.dev") in message
    assert "line 2" in message
    assert "corpus.on_decode_error: replace" in message


def test_replace_mode_substitutes_and_logs_count(tmp_path, caplog):
    raw = write_corpus(tmp_path / "raw")
    (raw / "gutenberg.dev").write_bytes(b"ok\n\xff\xfe bad\n")
    with caplog.at_level(logging.WARNING, logger="babyteach.data.clean"):
        stats = run(tmp_path, on_decode_error="replace")
    assert (tmp_path / "clean" / "gutenberg.dev").read_text(encoding="utf-8") == "ok\n\ufffd\ufffd bad\n"
    assert stats.set_index(["domain", "split"]).loc[("gutenberg", "dev"), "words"] == 3
    warning = [r.getMessage() for r in caplog.records if "gutenberg.dev" in r.getMessage()]
    assert len(warning) == 1 and "replaced 2 " in warning[0] and "line 2" in warning[0]


def test_unknown_decode_mode_names_config_key(tmp_path):
    write_corpus(tmp_path / "raw")
    with pytest.raises(InputError, match="corpus.on_decode_error"):
        run(tmp_path, on_decode_error="ignore")


def test_unknown_release_names_config_key(tmp_path):
    write_corpus(tmp_path / "raw")
    with pytest.raises(InputError, match="corpus.release"):
        run(tmp_path, release="2025")


def test_missing_domain_file_is_named(tmp_path):
    raw = write_corpus(tmp_path / "raw")
    (raw / "switchboard.test").unlink()
    with pytest.raises(InputError, match=re.escape(str(raw / "switchboard.test"))) as err:
        run(tmp_path)
    assert "data_mirror" in str(err.value)
    assert not (tmp_path / "clean").exists()


@pytest.mark.parametrize("content", [b"", b"\n \n\t\n"], ids=["zero-bytes", "whitespace-only"])
def test_empty_domain_file_is_named(tmp_path, content):
    raw = write_corpus(tmp_path / "raw")
    (raw / "open_subtitles.train").write_bytes(content)
    with pytest.raises(InputError, match=re.escape(str(raw / "open_subtitles.train")) + ".*empty"):
        run(tmp_path)


def test_file_with_nothing_left_after_cleaning_is_an_error(tmp_path):
    raw = write_corpus(tmp_path / "raw")
    (raw / "childes.dev").write_text("%add:\tCHI\n= = = childes/a.cha = = =\n*CHI:\t[babbles].\n")
    with pytest.raises(InputError, match=re.escape(str(raw / "childes.dev")) + ".*no text left"):
        run(tmp_path)


def test_failure_midway_leaves_previous_output_untouched_and_no_temporaries(tmp_path):
    raw = write_corpus(tmp_path / "raw")
    (raw / "switchboard.test").write_bytes(b"A:\tfine\nB:\t\xc3(\n")  # the last file cleaned
    with pytest.raises(InputError):
        run(tmp_path)
    assert not (tmp_path / "clean").exists()
    assert not (tmp_path / "stats.csv").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]  # no half-written temp folder

    (tmp_path / "clean").mkdir()
    (tmp_path / "clean" / "previous").write_text("kept")
    with pytest.raises(InputError):
        run(tmp_path)
    assert [p.name for p in (tmp_path / "clean").iterdir()] == ["previous"]


# --- the real corpus --------------------------------------------------------------------------


def test_real_mirror_files_leave_no_markup(data_mirror, tmp_path):
    """A few thousand lines of every babylm_10M file: no annotation, speaker code, marker or blank."""
    raw = data_mirror / "babylm_10M"
    n = 3000
    stats = clean_corpus(raw, tmp_path / "clean", tmp_path / "stats.csv", release="2024", max_lines_per_file=n)
    assert stats["lines"].max() == n and stats["lines"].min() > 1000  # switchboard dev/test are shorter
    forbidden = {
        "CHILDES %xxx: annotation": re.compile(r"^%[A-Za-z]+:"),
        "CHILDES *SPK: speaker code": re.compile(r"\*[A-Z][A-Z0-9]*:"),
        "Switchboard speaker code": re.compile(r"^[AB]:\s"),
        "= = = marker": re.compile(r"= = ="),
        "blank or untrimmed line": re.compile(r"^\s*$|^\s|\s$|\s\s|\t"),
    }
    for path in sorted((tmp_path / "clean").iterdir()):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("\n") and not text.endswith("\n\n"), path.name
        for line in text.split("\n")[:-1]:
            for what, pattern in forbidden.items():
                assert not pattern.search(line), f"{path.name}: {what} survived: {line!r}"
    # the sample really held what had to go
    sample = "".join((raw / f"childes.{s}").read_text(encoding="utf-8")[:200_000] for s in SPLITS)
    assert re.search(r"^%add:", sample, re.M) and re.search(r"^= = = childes/", sample, re.M)
    assert re.search(r"^[AB]:\t", (raw / "switchboard.dev").read_text(encoding="utf-8")[:10_000], re.M)
