"""The HTTP API fuzzed from its own OpenAPI schema: no input may produce a 5xx."""

import atexit
import shutil
import tempfile
from pathlib import Path

import schemathesis
from fakes import fake_embedder
from hypothesis import HealthCheck, settings
from support import ROOT

from ingest.pipeline import run_ingest
from service.api.app import create_app
from service.engine import build_engine
from service.settings import Settings


def _app():
    # Built at collection: schemathesis reads the schema when the module loads.
    tmp = Path(tempfile.mkdtemp(prefix="memoqa-fuzz-"))
    atexit.register(shutil.rmtree, tmp, True)
    shutil.copytree(ROOT / "corpus", tmp / "corpus")
    configured = Settings.model_validate(
        {
            "corpus": {"manifest": tmp / "corpus" / "manifest.json"},
            "index": {"path": tmp / "index", "lock_path": tmp / "ingest.lock"},
            "answer": {"generator": "extractive"},
            "security": {"rate_per_minute": 100000, "burst": 100000},
        }
    )
    embedder = fake_embedder()
    run_ingest(configured, embedder=embedder)
    app = create_app(configured, engine_factory=lambda s: build_engine(s, embedder=embedder))
    app.state.engine = build_engine(configured, embedder=embedder)  # no lifespan under the fuzzer
    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_input_makes_a_server_error(case):
    response = case.call()
    assert response.status_code < 500, (
        case.method,
        case.path,
        response.status_code,
        response.text[:300],
    )
