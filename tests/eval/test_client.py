"""`memoqa eval --url`: a running server reached over real HTTP, with its key,
waiting out its 429s."""

import pytest
from support import ServerThread, rate_limited_api

from eval.client import HttpClient
from ingest.errors import MemoqaError


def test_rate_limits_are_waited_out_with_the_key():
    with ServerThread(rate_limited_api(require_key="k1")) as server:
        client = HttpClient(server.url, key="k1")
        assert [client.search("SCO drills?", 5) for _ in range(3)] == [{"passages": []}] * 3
        assert client.ask("Who joined?")["answered"] is True


def test_a_refused_request_ends_the_run_with_the_reason():
    with ServerThread(rate_limited_api(require_key="k1")) as server:
        with pytest.raises(MemoqaError, match="401 from .*API key is required"):
            HttpClient(server.url).search("SCO drills?", 5)


def test_an_unreachable_server_is_named():
    with pytest.raises(MemoqaError, match="cannot reach http://127.0.0.1:9/v1/search"):
        HttpClient("http://127.0.0.1:9").search("SCO drills?", 5)
