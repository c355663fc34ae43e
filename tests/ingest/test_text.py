from ingest.text import clean_inline, extract_urls, markers_in, split_sentences, superscript_markers


def test_sentences_keep_markers_quotes_and_abbreviations():
    text = (
        "At their June 2002 summit in St. Petersburg, they adopted a charter.<sup>1</sup> "
        "It was funded by the U.S. European Command. He said “no.”<sup>2</sup> "
        "Putin advocated “security. . . . to replace” models. Then 4,000 troops came."
    )
    assert split_sentences(text) == [
        "At their June 2002 summit in St. Petersburg, they adopted a charter.<sup>1</sup>",
        "It was funded by the U.S. European Command.",
        "He said “no.”<sup>2</sup>",
        "Putin advocated “security. . . . to replace” models.",
        "Then 4,000 troops came.",
    ]


def test_superscript_sentences_split_after_the_marker():
    assert split_sentences("It opened in 2004.⁷ The RATS grew.") == [
        "It opened in 2004.⁷",
        "The RATS grew.",
    ]


def test_clean_inline_renders_markers_links_and_escapes():
    raw = (
        "A *record* \\$890 billion.<sup>46</sup> "
        "See [http://x.cn/A\\\\_1](http://x.cn/A\\\\_1) and <https://y.org/b>."
    )
    assert clean_inline(raw) == "A record $890 billion.⁴⁶ See http://x.cn/A_1 and https://y.org/b."
    assert clean_inline(raw, markers="strip").startswith("A record $890 billion. See")
    assert markers_in(raw) == [46]
    assert superscript_markers(clean_inline(raw)) == [46]


def test_extract_urls_unescapes_and_deduplicates():
    raw = "[http://a.cn/CHINA\\\\_209163/x.html](http://a.cn/CHINA\\\\_209163/x.html) and <https://b.org/p?id=1&q=2>."
    assert extract_urls(raw) == ["http://a.cn/CHINA_209163/x.html", "https://b.org/p?id=1&q=2"]
