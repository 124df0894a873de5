"""Per-domain cleaning of a BabyLM corpus: raw ``<domain>.<split>`` files → one clean line per utterance.

Modelled on the published BabyLM preprocessing of LTG-BERT/ELC-BERT (Samuel et al. 2023;
ltgoslo/ltg-bert, ltgoslo/elc-bert ``preprocess/``), simplified where theirs reformats text for
their own tokenizer. Run it on a downloaded corpus folder::

    from pathlib import Path
    from babyteach.data.clean import clean_corpus
    stats = clean_corpus(Path("results/raw/babylm-2024-10M"), Path("results/2024-10M/clean"),
                         Path("results/2024-10M/stats/corpus.csv"), release="2024")

Every cleaner starts from the same :func:`normalise` step and ends with the same filter:

* Unicode: NFKC, then curly quotes made straight, control characters turned into spaces and
  invisible characters (zero-width space/joiners, word joiner, BOM, soft hyphen) deleted.
  LTG-BERT runs ``ftfy.fix_text`` (NFC plus ligature/width folding, quote uncurling and
  control-character removal); NFKC does the folding with the standard library alone.
  Case is preserved (BLiMP is cased).
* Whitespace: every run of whitespace (tabs, NBSP, Unicode spaces) becomes one space; lines
  are stripped.
* Lines with no letter or digit left (empty lines, stray punctuation, an utterance that was
  only an annotation) are dropped: they hold no words.

Choices shared by several domains:

* Speaker codes (CHILDES ``*MOT:``, Switchboard ``A:``) are **stripped**: they are
  transcription metadata, not speech; the evaluation sets are single-speaker sentences
  (only the BLiMP supplement's turn_taking/qa_congruence use ``A:``/``Name:`` turns); and
  the word counts of Table 5 should count spoken words, not ~1 code per CHILDES utterance.
  LTG-BERT likewise keeps only the utterance. Both spoken domains use the same rule.
* Unlike LTG-BERT, utterances are not wrapped in quotes and repeated consecutive lines are
  kept: repetition is part of child-directed speech and of dialogue.
* Corpus file markers (``= = = childes/x.cha = = =``, ``= = = PG123 = = =``) are dropped;
  wiki article headings (``= = = Title = = =``) are kept as a plain title line (real text,
  and LTG-BERT's Wikipedia preprocessing does the same).
"""

from __future__ import annotations

import html
import itertools
import logging
import os
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd

from babyteach.data.corpora import BABYLM_DOMAINS, SPLITS
from babyteach.errors import InputError
from babyteach.io import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

#: A cleaner maps raw lines (without newlines) to clean lines, one utterance/sentence each.
Cleaner = Callable[[Iterable[str]], Iterator[str]]

#: Accepted values of ``corpus.on_decode_error``.
DECODE_ERROR_MODES: tuple[str, ...] = ("strict", "replace")

#: Columns of the statistics table (the paper's Table 5 input).
STATS_COLUMNS: tuple[str, ...] = ("domain", "split", "lines", "words")

# --- shared normalisation ---------------------------------------------------------------

_QUOTES = {c: "'" for c in "\u2018\u2019\u201a\u201b"} | {c: '"' for c in "\u201c\u201d\u201e\u201f"}
_INVISIBLE = {c: None for c in "\u00ad\u200b\u200c\u200d\u2060\ufeff"}
_CONTROLS = {chr(c): " " for c in [*range(0x00, 0x20), *range(0x7F, 0xA0)] if chr(c) != "\n"}
_TRANSLATION = str.maketrans(_QUOTES | _INVISIBLE | _CONTROLS)
_HAS_ALNUM = re.compile(r"[^\W_]")


def normalise(line: str) -> str:
    """NFKC, straight quotes, controls → space, invisible characters deleted, whitespace collapsed."""
    return squash(unicodedata.normalize("NFKC", line).translate(_TRANSLATION))


def squash(text: str) -> str:
    """Collapse every whitespace run to one space and strip the ends."""
    return " ".join(text.split())


def _finish(text: str) -> str | None:
    """The final step of every cleaner: squash whitespace; None if no letter or digit is left."""
    text = squash(text)
    return text if _HAS_ALNUM.search(text) else None


# --- markup shared by several domains -------------------------------------------------------

_MARKER = re.compile(r"= = = (.*?) = = =")  # whole-line `= = = X = = =`, matched with fullmatch
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")
_SQUARE_BRACKETED = re.compile(r"\s*\[[^\[\]]*\]")


def _unescape(text: str) -> str:
    """Decode HTML entities, repeatedly for doubly escaped text (``&amp;lt;``), at most 3 times."""
    for _ in range(3):
        if "&" not in text:
            break
        decoded = html.unescape(text)
        if decoded == text:
            break
        text = decoded
    return text


# --- the cleaners ---------------------------------------------------------------------------


def clean_plain(lines: Iterable[str]) -> Iterator[str]:
    """bnc_spoken, children_stories: already one sentence per line, only the shared steps.

    BNC spoken lines carry no markup in the BabyLM release (LTG-BERT also only drops lines
    that are bare punctuation, which the shared letter-or-digit filter does).
    """
    for line in lines:
        if (text := _finish(normalise(line))) is not None:
            yield text


_CHAT_ANNOTATION = re.compile(r"%[A-Za-z]+:")  # at line start: %add:, %int:, %com: ...
_CHAT_SPEAKER = re.compile(r"(?:^|\s)\*[A-Z][A-Z0-9]*:(?=\s|$)")
_CHAT_UNTRANSCRIBED = re.compile(r"\s*\b(?:xxx|yyy|www)\b")


def clean_childes(lines: Iterable[str]) -> Iterator[str]:
    """childes (2024), aochildes (2023): CHAT transcripts → one utterance per line.

    * ``%xxx:`` dependent-tier lines (``%add:``, ``%int:`` …: addressee, intonation) are
      dropped: annotations, not speech.
    * ``= = = childes/….cha = = =`` file markers are dropped.
    * ``*SPK:`` speaker codes are stripped (module docstring: why); a line holding several
      ``*SPK: …`` turns (a few CHILDES files are joined that way) becomes one line per turn.
    * ``[…]`` transcriber comments (``[laughs]``, ``[friend]``, ``[MOT looks at CHI]``) are
      removed, and so are the CHAT codes for untranscribed speech ``xxx``, ``yyy``, ``www``;
      an utterance left with no words (``*CHI: [babbles].``) is dropped.
    * AO-CHILDES (2023) is plain utterances already; the same rules are no-ops on it.
    """
    for line in lines:
        line = normalise(line)
        if _CHAT_ANNOTATION.match(line) or _MARKER.fullmatch(line):
            continue
        for turn in _CHAT_SPEAKER.split(line):
            turn = _CHAT_UNTRANSCRIBED.sub("", _SQUARE_BRACKETED.sub("", turn))
            if (text := _finish(turn)) is not None:
                yield text


_SWITCHBOARD_SPEAKER = re.compile(r"[AB]:(?:\s|$)")


def clean_switchboard(lines: Iterable[str]) -> Iterator[str]:
    """switchboard: ``A:\\t…`` / ``B:\\t…`` turns → the utterance alone.

    The speaker code is stripped, as for CHILDES (module docstring: why). Continuation
    lines without a code are kept as they are; double spaces inside turns are collapsed.
    """
    for line in lines:
        line = normalise(line)
        if (code := _SWITCHBOARD_SPEAKER.match(line)) is not None:
            line = line[code.end() :]
        if (text := _finish(line)) is not None:
            yield text


_HEADING_RULE = re.compile(r"\s*(?<!\S)=(?:\s+=)+(?!\S)\s*")  # `= =`, `= = =` as separate tokens
_WIKI_META_LINK = re.compile(r"\[\[(?:Category|File|Image):[^\]]*\]\]", re.IGNORECASE)
_WIKI_LINK = re.compile(r"\[\[(?:[^\]|]*\|)?([^\]|]*)\]\]")
_CITATION = re.compile(r"\[\d+\]")


def clean_wiki(lines: Iterable[str]) -> Iterator[str]:
    """simple_wiki (2024), simple_wikipedia and wikipedia (2023): article sentences.

    * ``= = = Title = = =`` article headings are kept as a plain title line ``Title``
      (as LTG-BERT's Wikipedia preprocessing does): the title is ordinary text and marks the
      start of a new article. A ``= = =`` rule inside a line (the sampled mirror corpus has
      joined lines such as ``Alan Walker = = = Alan Walker (born 1997) is …``) splits it
      there, so the title is its own line in that case too.
    * HTML entities are decoded (``&amp;`` → ``&``, also doubly escaped ones) and HTML/wiki
      tags left in the dump (``<br>``, ``<ref name=…>``, ``<poem>``) are removed.
    * Leftover wiki links: ``[[Category:…]]``/``[[File:…]]`` are removed, ``[[target|label]]``
      becomes ``label`` and ``[[target]]`` becomes ``target``; citation marks ``[12]`` go.
    """
    for line in lines:
        line = normalise(line)
        for piece in _HEADING_RULE.split(line) if "= =" in line else (line,):
            piece = _HTML_TAG.sub(" ", _unescape(piece))
            if "[" in piece:
                piece = _CITATION.sub("", _WIKI_LINK.sub(r"\1", _WIKI_META_LINK.sub("", piece)))
            if (text := _finish(piece)) is not None:
                yield text


_ILLUSTRATION = re.compile(r"\s*\[Illustration[^\]]*\]")
_FOOTNOTE_MARK = re.compile(r"\[(?:\d+|[A-Z])\]")
_ITALICS = re.compile(r"(?<![^\W_])_(\S(?:[^_]*?\S)?)_(?![^\W_])")


def clean_gutenberg(lines: Iterable[str]) -> Iterator[str]:
    """gutenberg: book text, one sentence or paragraph per line.

    * ``= = = PG12345 = = =`` book markers are dropped (ids, not text).
    * Project Gutenberg's editorial markup goes: ``[Illustration]`` and
      ``[Illustration: caption]``, footnote anchors ``[1]``/``[A]``, and the underscores that
      mark italics (``_not_`` → ``not``).
    """
    for line in lines:
        line = normalise(line)
        if _MARKER.fullmatch(line):
            continue
        if "[" in line:
            line = _FOOTNOTE_MARK.sub("", _ILLUSTRATION.sub("", line))
        if "_" in line:
            line = _ITALICS.sub(r"\1", line)
        if (text := _finish(line)) is not None:
            yield text


_SUBTITLE_OVERRIDE = re.compile(r"\{\\[^{}]*\}")  # ASS/SSA tags: {\pos(192,220)}, {\an8}
_SUBTITLE_SPEAKER = re.compile(  # NARRATOR:, MAN 2:, LILY [OVER SPEAKERPHONE]:
    r"(?:^|(?<=[\s.!?]))[A-Z][A-Z0-9'.-]+(?: [A-Z0-9][A-Z0-9'.-]*){0,2}(?:\s*\[[^\[\]]*\])?:(?=\s|$)"
)
_SUBTITLE_SOUND = re.compile(r"\s*\[[^\[\]]*\](?:\s*:)?")  # [laughs], [TREY]:
_SUBTITLE_CAPS_NOTE = re.compile(r"\s*\((?=[^()]*[A-Z]{2})[A-Z0-9 ,.'!?&-]+\)(?:\s*:)?")  # (SIGHS), (RIMMER)
_SUBTITLE_MUSIC = re.compile(r"[\u266a\u266b\u00b6]+")  # ♪ ♫ ¶
_SUBTITLE_LEAD = re.compile(r"(?:-+|>>)\s*")  # dialogue dash, speaker-change chevrons
_SRT_TIMING = re.compile(r"\d+:\d+:\d+[,.]\d+\s*-->")


def clean_subtitles(lines: Iterable[str]) -> Iterator[str]:
    """open_subtitles, qed (2023): subtitle text → spoken text only.

    * Subtitle markup is removed: ASS override tags (``{\\pos(192,220)}``), HTML tags
      (``<i>``, after decoding entities such as QED's ``&lt;i&gt;``), music signs (♪ ¶).
    * Closed-caption (SDH) notes are removed: descriptions in square brackets (``[laughs]``,
      ``[bleep]``) or in upper-case parentheses (``(SIGHS)``, ``(ENGINE STARTS)``), and speaker
      labels (``[TREY]:``, ``NARRATOR:``, ``MAN 2:``, ``LILY [OVER PHONE]:``), stripped like
      the speaker codes of the spoken domains. The label rule is a heuristic: an all-caps
      phrase of up to three words before a colon (``PLAN B: …`` would lose ``PLAN B:``).
    * A leading dialogue dash (``- Okay.``) or speaker-change ``>>`` is removed, as LTG-BERT
      does; dashes inside a line that separate two speakers are kept.
    * SRT timing lines (``00:00:01,000 --> 00:00:04,000``) are dropped.
    """
    for line in lines:
        line = normalise(line)
        if _SRT_TIMING.match(line):
            continue
        line = _HTML_TAG.sub(" ", _unescape(line))
        if "{" in line:
            line = _SUBTITLE_OVERRIDE.sub(" ", line)
        if ":" in line:
            line = _SUBTITLE_SPEAKER.sub("", line)
        if "[" in line:
            line = _SUBTITLE_SOUND.sub("", line)
        if "(" in line:
            line = _SUBTITLE_CAPS_NOTE.sub("", line)
        line = _SUBTITLE_MUSIC.sub(" ", line).strip()
        if (lead := _SUBTITLE_LEAD.match(line)) is not None:
            line = line[lead.end() :]
        if (text := _finish(line)) is not None:
            yield text


_PTB_BRACKETS = {"-LRB-": "(", "-RRB-": ")", "-LSB-": "[", "-RSB-": "]", "-LCB-": "{", "-RCB-": "}"}
_PTB_BRACKET = re.compile("|".join(map(re.escape, _PTB_BRACKETS)))
_PTB_OPEN_QUOTE = re.compile(r"``\s*")
_PTB_CLOSE_QUOTE = re.compile(r"\s*''")
_SPACE_BEFORE = re.compile(r"\s+(?=[.,;:!?%)\]}]|n't\b|'(?:s|re|ve|m|ll|d)\b)", re.IGNORECASE)
_SPACE_AFTER = re.compile(r"(?<=[(\[{])\s+")


def clean_cbt(lines: Iterable[str]) -> Iterator[str]:
    """cbt (2023): Children's Book Test, Penn-Treebank tokenised → ordinary text.

    * ``_BOOK_TITLE_ : …`` lines are dropped (file names, not text).
    * PTB escapes are undone: ``-LRB-`` → ``(`` (and the other brackets), ````…''`` → ``"…"``.
    * Detokenised, as LTG-BERT does: no space before ``. , ; : ! ? % ) ] }`` or clitics
      (``n't``, ``'s``, ``'re``, ``'ve``, ``'m``, ``'ll``, ``'d``), none after ``( [ {``.
    """
    for line in lines:
        line = normalise(line)
        if line.startswith("_BOOK_TITLE_"):
            continue
        line = _PTB_BRACKET.sub(lambda m: _PTB_BRACKETS[m.group()], line)
        line = _PTB_CLOSE_QUOTE.sub('"', _PTB_OPEN_QUOTE.sub('"', line))
        line = _SPACE_AFTER.sub("", _SPACE_BEFORE.sub("", line))
        if (text := _finish(line)) is not None:
            yield text


#: Domain name → cleaner, for every domain of every release (shared names: one entry).
CLEANERS: dict[str, Cleaner] = {
    "aochildes": clean_childes,
    "bnc_spoken": clean_plain,
    "cbt": clean_cbt,
    "childes": clean_childes,
    "children_stories": clean_plain,
    "gutenberg": clean_gutenberg,
    "open_subtitles": clean_subtitles,
    "qed": clean_subtitles,
    "simple_wiki": clean_wiki,
    "simple_wikipedia": clean_wiki,
    "switchboard": clean_switchboard,
    "wikipedia": clean_wiki,
}


# --- reading ----------------------------------------------------------------------------------


def read_text(path: Path, on_decode_error: str = "strict") -> str:
    """Read a corpus file as UTF-8; non-UTF-8 bytes stop (``strict``) or become U+FFFD (``replace``).

    A missing file, an empty (or whitespace-only) file and, in strict mode, invalid bytes raise
    :class:`InputError` naming the file (and the line of the first invalid byte).
    """
    _check_decode_mode(on_decode_error)
    if not path.is_file():
        raise InputError(
            f"{path}: corpus file not found; check the data source (the downloaded corpus, "
            "or the babylm_10M/ folder of `data_mirror`) holds every <domain>.<split> file"
        )
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        if on_decode_error == "strict":
            raise InputError(
                f"{path}: line {line}: bytes {data[err.start : err.end]!r} are not valid UTF-8 "
                f"({err.reason}); fix or re-download the file, or set "
                "`corpus.on_decode_error: replace` to substitute U+FFFD"
            ) from None
        text = data.decode("utf-8", errors="replace")
        replaced = text.count("\ufffd") - data.count("\ufffd".encode())
        log.warning(
            "%s: replaced %d invalid UTF-8 byte sequence(s) with U+FFFD (first on line %d)",
            path,
            replaced,
            line,
        )
    if not text.strip():
        raise InputError(
            f"{path}: corpus file is empty; check the data source (the downloaded corpus, or "
            "the babylm_10M/ folder of `data_mirror`) and fetch it again"
        )
    return text


def _check_decode_mode(on_decode_error: str) -> None:
    if on_decode_error not in DECODE_ERROR_MODES:
        raise InputError(
            f"corpus.on_decode_error: unknown value {on_decode_error!r}; choose one of {list(DECODE_ERROR_MODES)}"
        )


# --- the corpus ---------------------------------------------------------------------------------


def clean_corpus(
    raw_dir: Path,
    clean_dir: Path,
    stats_csv: Path,
    release: str,
    on_decode_error: str = "strict",
    max_lines_per_file: int | None = None,
) -> pd.DataFrame:
    """Clean every ``<domain>.<split>`` of a BabyLM release and count its lines and words.

    ``raw_dir`` holds one file per domain of ``release`` (:data:`BABYLM_DOMAINS`) and split
    (:data:`SPLITS`); other files there are ignored. Writes ``clean_dir/<domain>.<split>``
    (UTF-8, one utterance/sentence per line, trailing newline) as one atomic directory — if
    any file fails, no new ``clean_dir`` appears and an old one is left as it was — and
    ``stats_csv`` with one row per domain and split: ``domain,split,lines,words`` counted on
    the cleaned text (words = ``len(line.split())``), which is returned too.

    ``max_lines_per_file`` keeps only the first N *cleaned* lines of each file (the demo
    config's small corpus); ``None`` keeps everything.
    """
    raw_dir, clean_dir, stats_csv = Path(raw_dir), Path(clean_dir), Path(stats_csv)
    _check_decode_mode(on_decode_error)
    if release not in BABYLM_DOMAINS:
        raise InputError(f"corpus.release: unknown BabyLM release {release!r}; choose one of {sorted(BABYLM_DOMAINS)}")
    if max_lines_per_file is not None and (
        isinstance(max_lines_per_file, bool) or not isinstance(max_lines_per_file, int) or max_lines_per_file < 1
    ):
        raise InputError(
            f"corpus.max_lines_per_file: {max_lines_per_file!r} is not a positive integer; use N >= 1 or null"
        )
    files = [(domain, split) for domain in BABYLM_DOMAINS[release] for split in SPLITS]
    missing = [raw_dir / f"{d}.{s}" for d, s in files if not (raw_dir / f"{d}.{s}").is_file()]
    if missing:
        raise InputError(
            f"{missing[0]}: corpus file not found ({len(missing)} of {len(files)} files of release "
            f"{release} missing in {raw_dir}: {', '.join(p.name for p in missing)}); check the data source "
            "(the downloaded corpus, or the babylm_10M/ folder of `data_mirror`)"
        )

    start = time.perf_counter()
    rows = []
    with atomic_path(clean_dir) as tmp:
        tmp.mkdir()
        for domain, split in files:
            raw = raw_dir / f"{domain}.{split}"
            lines = CLEANERS[domain](read_text(raw, on_decode_error).split("\n"))
            kept = list(itertools.islice(lines, max_lines_per_file))
            if not kept:
                raise InputError(
                    f"{raw}: no text left after cleaning (only annotations, markers or empty lines); "
                    "check the data source"
                )
            words = sum(len(line.split()) for line in kept)
            _write_lines(tmp / raw.name, kept)
            rows.append((domain, split, len(kept), words))
            log.info("%s: %d lines, %d words after cleaning", raw.name, len(kept), words)
    stats = pd.DataFrame(rows, columns=list(STATS_COLUMNS))
    write_text_atomic(stats_csv, stats.to_csv(index=False))
    log.info(
        "cleaned %d files (%d words) into %s in %.1f s",
        len(files),
        stats["words"].sum(),
        clean_dir,
        time.perf_counter() - start,
    )
    return stats


def _write_lines(path: Path, lines: list[str]) -> None:
    """Write lines with a trailing newline, fsynced (the directory is renamed into place after)."""
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines))
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
