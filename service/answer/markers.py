"""Citation markers: `[n]` after a sentence cites the evidence numbered n. The one
pattern every reader of answers uses."""

from __future__ import annotations

import re

from ingest.text import split_sentences

MARKER_RE = re.compile(r"\[(\d+)\]")


def split_answer(answer: str) -> list[tuple[str, list[int]]]:
    """Answer sentences with the citation markers each carries. A list answer
    (lines starting with "- ") is one statement."""
    if "\n- " in answer:
        return [(MARKER_RE.sub("", answer).strip(), [int(n) for n in MARKER_RE.findall(answer)])]
    out: list[tuple[str, list[int]]] = []
    for sentence in split_sentences(answer.replace("\n", " ")):
        # Markers that open a "sentence" were placed after the previous full stop.
        lead = re.match(r"^(?:\s*\[\d+\])+", sentence)
        if lead and out:
            out[-1] = (out[-1][0], out[-1][1] + [int(n) for n in MARKER_RE.findall(lead.group(0))])
            sentence = sentence[lead.end() :]
        text = MARKER_RE.sub("", sentence).strip()
        if text and re.search(r"\w", text):
            out.append(
                (
                    re.sub(r"\s+([.,;:!?])", r"\1", text),
                    [int(n) for n in MARKER_RE.findall(sentence)],
                )
            )
    return out
