"""Answer settings that cannot work are refused at start, with the reason."""

import pytest
from conftest import make_settings

from ingest.errors import MemoqaError, ModelNotFoundError
from service.engine import check_mode, preflight


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        ({"mode": "paraphrase"}, "unknown answer mode 'paraphrase'"),
        ({"check": "strict"}, "unknown answer check 'strict'"),
        ({"reader": "guess"}, "unknown answer reader 'guess'"),
    ],
)
def test_unknown_answer_settings_are_refused(tmp_path, answer, message):
    settings = make_settings(tmp_path, tmp_path / "manifest.json", answer=answer)
    with pytest.raises(MemoqaError, match=message):
        preflight(settings)


def test_a_model_check_needs_the_model_file(tmp_path):
    settings = make_settings(
        tmp_path,
        tmp_path / "manifest.json",
        answer={"check": "model"},
        llm={"model_path": tmp_path / "none.gguf"},
    )
    with pytest.raises(ModelNotFoundError, match="the answer check needs it"):
        preflight(settings)


@pytest.mark.parametrize(
    ("generator", "check", "mode"),
    [
        ("local", "auto", "model"),
        ("extractive", "auto", "rules"),
        ("openai", "auto", "rules"),
        ("local", "none", "none"),
    ],
)
def test_auto_check_follows_the_generator(tmp_path, generator, check, mode):
    settings = make_settings(
        tmp_path, tmp_path / "manifest.json", answer={"generator": generator, "check": check}
    )
    assert check_mode(settings) == mode


def test_an_engine_is_not_built_with_an_unknown_mode(settings, hash_embedder):
    from service.engine import build_engine

    bad = settings.model_copy(
        update={"answer": settings.answer.model_copy(update={"mode": "paraphrase"})}
    )
    with pytest.raises(MemoqaError, match="unknown answer mode"):
        build_engine(bad, embedder=hash_embedder)
