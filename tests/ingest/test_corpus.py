"""Bad corpus input: a clear error naming the file."""

import json

import pytest

from ingest.corpus import load_corpus
from ingest.errors import CorpusError


def write_manifest(folder, documents):
    path = folder / "manifest.json"
    path.write_text(json.dumps({"documents": documents}))
    return path


def entry(file="doc.md", id="doc-1"):
    return {"id": id, "file": file, "title": "A paper"}


def test_real_manifest_loads(corpus_dir):
    docs = load_corpus(corpus_dir / "manifest.json")
    assert [d.meta.id for d in docs] == ["weitz-2025-sco"]
    assert docs[0].meta.author == "Richard Weitz" and docs[0].meta.publisher == "Hudson Institute"
    assert len(docs[0].sha256) == 64


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        (b"", "is empty"),
        (b"   \n\n", "is empty"),
        (b"\xff\xfe# Title\x00\x00", "not UTF-8"),
        (b"# T\x00\x01\x02 binary", "binary"),
    ],
)
def test_bad_files_are_named(tmp_path, content, message):
    if content is not None:
        (tmp_path / "doc.md").write_bytes(content)
    manifest = write_manifest(tmp_path, [entry()])
    with pytest.raises(CorpusError, match=message) as caught:
        load_corpus(manifest)
    assert "doc.md" in str(caught.value)


@pytest.mark.parametrize(
    "manifest_text, message",
    [
        ("{not json", "not valid JSON"),
        (
            json.dumps({"documents": [{"id": "Bad Id!", "file": "a.md", "title": "t"}]}),
            "invalid manifest",
        ),
        (json.dumps({"documents": [{"file": "a.md", "title": "t"}]}), "invalid manifest"),
        (json.dumps({"documents": []}), "lists no documents"),
        (json.dumps({"documents": [entry(), entry()]}), "duplicate document ids"),
    ],
)
def test_bad_manifests(tmp_path, manifest_text, message):
    (tmp_path / "doc.md").write_text("# T\n\n## S\n\nText.\n")
    path = tmp_path / "manifest.json"
    path.write_text(manifest_text)
    with pytest.raises(CorpusError, match=message):
        load_corpus(path)


def test_missing_manifest(tmp_path):
    with pytest.raises(CorpusError, match="manifest not found"):
        load_corpus(tmp_path / "nope.json")
