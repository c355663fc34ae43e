"""The parser on the real memo."""

import re

import pytest

from ingest.errors import CorpusError
from ingest.parse import parse_document
from ingest.text import clean_inline, markers_in, strip_superscripts


@pytest.fixture(scope="module")
def parsed(memo_text):
    return parse_document(memo_text, name="memo")


def test_title_and_no_warnings(parsed):
    assert (
        parsed.title == "Sino-Russian Interactions Regarding the Shanghai Cooperation Organization"
    )
    assert parsed.warnings == []


def test_all_73_endnotes_with_urls(parsed, memo_text):
    assert sorted(parsed.endnotes) == list(range(1, 74))
    for number, note in parsed.endnotes.items():
        assert note.text, number
        short_form = number in {25, 30, 34, 58, 61, 68}  # short-form notes have no URL
        assert note.urls or short_form, number
        for url in note.urls:
            assert url.startswith(("http://", "https://")), url
            assert "\\" not in url, url
    assert parsed.endnotes[29].urls == [
        "https://www.dagens.com/world/turkey-seeks-permanent-membership-in-shanghai-cooperation-organization"
    ]
    assert "Dagens.com" in parsed.endnotes[29].text
    assert parsed.endnotes[2].urls == [
        "http://eng.chinamil.com.cn/CHINA_209163/TopStories_209189/10093190.html"
    ]
    assert "$890 Billion" in parsed.endnotes[46].text


def test_endnotes_split_by_page_breaks_are_joined(parsed):
    assert "China Military Online, September 13, 2024" in parsed.endnotes[23].text
    assert parsed.endnotes[23].urls == [
        "http://eng.chinamil.com.cn/CHINA_209163/TopStories_209189/16338258.html"
    ]
    assert "From bilateral interaction to a common global vision" in parsed.endnotes[71].text
    assert "Swedish Institute of International Affairs" in parsed.endnotes[72].text


def test_every_marker_links_to_an_endnote(parsed, memo_text):
    body = memo_text[: memo_text.index("## Endnotes")]
    in_text = [int(n) for n in re.findall(r"<sup>(\d+)</sup>", body)]
    in_units = [n for u in parsed.units for n in markers_in(u.raw)]
    assert sorted(in_units) == sorted(in_text) == list(range(1, 74))
    assert set(in_units) <= set(parsed.endnotes)


def test_sections_and_heading_paths(parsed):
    sections = {u.section for u in parsed.units}
    for expected in [
        ("Takeaways",),
        ("Executive Summary",),
        ("Introduction",),
        ("Introduction", "Paper Roadmap"),
        ("History and Structure",),
        ("Russian Goals",),
        ("Chinese Goals",),
        ("Russian Means",),
        ("Chinese Means",),
        ("Russia-China Interactions and Implications",),
        ("About the Author",),
    ]:
        assert expected in sections, expected


def test_boxed_lists_stay_with_their_heading_and_body_resumes(parsed):
    lists = {
        u.section: [clean_inline(p.text) for p in u.pieces]
        for u in parsed.units
        if u.kind == "list"
    }
    assert lists[("Russian Goals", "Moscow's Objectives Regarding the SCO")] == [
        "Promote non-Western international institutions",
        "Highlight Russia's international prominence",
        "Influence other members' policies",
        "Counter terrorism and other transnational threats",
        "Encourage use of non-Western financial instruments",
    ]
    assert len(lists[("Chinese Means", "Beijing’s Means of Influence Concerning the SCO")]) == 7
    assert len(lists[("Takeaways",)]) == 4
    after = next(
        u for u in parsed.units if clean_inline(u.raw).startswith("The previous month, Putin said")
    )
    assert after.section == ("Russian Goals",)


def test_page_break_paragraphs_are_repaired(parsed):
    texts = [clean_inline(u.raw) for u in parsed.units if u.kind == "paragraph"]
    joined = " ".join(texts)
    for fragment in [
        "decrease its focus on Central Asia but make it a more effective tool",
        "military exercises with Central Asian partners have occurred under its auspices",
        "regular meetings of their foreign, defense",
        "countering unmanned aerial vehicles, ensuring information security",
        "the Moscow-led CSTO.⁶²",
        "Belarus received a similar promotion.",
        "indivisible security and development. . . . to replace the obsolete",
        "China is transforming the RATS into a more integrated",
    ]:
        assert fragment in joined, fragment
    assert len(parsed.repairs) == 16
    # No body paragraph is left broken off mid-sentence (the back page's address is no prose).
    for unit in parsed.units:
        if unit.kind == "paragraph" and unit.section != ("About Hudson Institute",):
            text = strip_superscripts(clean_inline(unit.raw))
            assert re.search(r"[.!?:”\"’)]$", text), text


def test_figures_keep_their_source_lines(parsed):
    figures = [u for u in parsed.units if u.kind == "figure"]
    assert [clean_inline(f.pieces[0].text)[:9] for f in figures] == [
        "Figure 1.",
        "Figure 2.",
        "Figure 3.",
    ]
    assert all(clean_inline(f.pieces[1].text).startswith("Source:") for f in figures)
    assert figures[0].section == ("History and Structure",)


def test_abbreviations(parsed):
    assert len(parsed.abbreviations) == 13
    assert parsed.abbreviations["RATS"] == "Regional Antiterrorism Structure"
    assert parsed.abbreviations["EAEU"] == "Eurasian Economic Union"


def test_unit_offsets_point_into_the_source(parsed, memo_text):
    for unit in parsed.units:
        for piece in unit.pieces:
            assert " ".join(memo_text[a:b] for a, b in piece.segments) == piece.text


def test_text_without_body_is_rejected():
    with pytest.raises(CorpusError, match="no body text"):
        parse_document("# Only a title\n", name="empty.md")
