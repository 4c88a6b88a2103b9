"""The bundled price table, dated-name matching, overrides and bad override files."""

from __future__ import annotations

import datetime
import gc
import json
import pathlib
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import TracerProvider

import rlm_toolkit
from rlm_toolkit import pricing
from rlm_toolkit.callbacks import BaseCallback
from rlm_toolkit.genai import _reaper
from rlm_toolkit.pricing import PRICES_AS_OF, Price, estimate_cost, get_price, load_prices, set_price
from rlm_toolkit.testing import OpenAIServer


@pytest.fixture(autouse=True)
def _clean_overrides() -> Iterator[None]:
    pricing._reset_overrides()
    yield
    pricing._reset_overrides()


def test_table_is_dated_and_covers_common_models() -> None:
    assert datetime.date.fromisoformat(PRICES_AS_OF) <= datetime.date.today()
    for model in (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "o1",
        "o3",
        "o3-mini",
        "o4-mini",
        "gpt-5",
        "gpt-5-mini",
        "gpt-5-nano",
        "gpt-3.5-turbo",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
    ):
        assert get_price(model) is not None, model


def test_known_prices_exactly() -> None:
    assert get_price("gpt-4o") == Price(input=2.5, output=10.0, cached_input=1.25)
    assert get_price("gpt-4o-mini") == Price(input=0.15, output=0.6, cached_input=0.075)
    assert get_price("text-embedding-3-small") == Price(input=0.02, output=0.0, cached_input=None)


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("GPT-4o-Mini", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o3-mini-2025-01-31", "o3-mini"),
        ("o1-2024-12-17", "o1"),
        ("gpt-3.5-turbo-0125", "gpt-3.5-turbo"),
        ("gpt-5-nano-2025-08-07", "gpt-5-nano"),
    ],
)
def test_dated_names_match_their_family(model: str, family: str) -> None:
    assert get_price(model) == get_price(family)
    assert get_price(model) is not None


def test_prefix_match_respects_dash_boundaries() -> None:
    # "gpt-4" must not price "gpt-4o..." nor "gpt-4.1..."; an exact dated entry beats its family.
    assert get_price("gpt-4o-2024-05-13") == Price(input=5.0, output=15.0, cached_input=None)
    assert get_price("gpt-4o-2024-05-13") != get_price("gpt-4o")
    assert get_price("gpt-4oz") is None
    assert get_price("o3x") is None


@pytest.mark.parametrize(
    ("model", "cheaper"),
    [
        ("gpt-5-codex", "gpt-5"),
        ("gpt-5.1-codex-mini", "gpt-5.1"),
        ("gpt-5-pro-mini", "gpt-5-pro"),
        ("o4-mini-deep-research", "o4-mini"),
        ("gpt-4o-mini-search-preview", "gpt-4o-mini"),
        ("gpt-4o-realtime-preview", "gpt-4o"),
        ("claude-opus-4-8", "claude-opus-4"),
    ],
)
def test_no_fallback_picks_a_cheaper_models_price(model: str, cheaper: str) -> None:
    # #22.4: only a trailing date suffix is dropped; a longer name is another model, unpriced
    # (visibly) rather than priced as the shorter name it starts with.
    provider = "anthropic" if model.startswith("claude") else None
    assert get_price(cheaper, provider) is not None
    assert get_price(model, provider) is None
    assert estimate_cost(model, input_tokens=1000, output_tokens=1000, provider=provider) is None


def test_o3_deep_research_has_its_own_sourced_row() -> None:
    # Before: priced as o3 ($2/$8) by prefix. OpenAI's announcement: $10/$40, no cached rate.
    assert get_price("o3-deep-research") == Price(input=10.0, output=40.0, cached_input=None)
    assert get_price("o3-deep-research-2025-06-26") == get_price("o3-deep-research")
    assert estimate_cost("o3-deep-research", input_tokens=1000, output_tokens=1000) == pytest.approx(
        (1000 * 10.0 + 1000 * 40.0) / 1e6
    )


def test_rows_sourced_on_2026_12_05() -> None:
    # #22.4 refresh. gpt-5-pro: before unpriced (and before that priced as gpt-5 by prefix,
    # $1.25/$10); OpenAI's model page: $15/$120, no cached rate. gpt-5.1: before unpriced.
    assert get_price("gpt-5-pro") == Price(input=15.0, output=120.0, cached_input=None)
    assert get_price("gpt-5-pro-2025-10-06") == get_price("gpt-5-pro")
    assert estimate_cost("gpt-5-pro", input_tokens=1000, output_tokens=1000, cached_input_tokens=500) == (
        pytest.approx((1000 * 15.0 + 1000 * 120.0) / 1e6)
    )
    assert get_price("gpt-5.1") == Price(input=1.25, output=10.0, cached_input=0.125)
    assert get_price("gpt-5.1-2025-11-13") == get_price("gpt-5.1")
    # re-checked, unchanged
    assert get_price("gpt-5-mini") == Price(input=0.25, output=2.0, cached_input=0.025)
    assert get_price("gpt-5-nano") == Price(input=0.05, output=0.4, cached_input=0.005)
    assert get_price("gpt-4") == Price(input=30.0, output=60.0, cached_input=None)
    # no first-party price found: unpriced, not gpt-5's
    assert get_price("gpt-5.2") is None and get_price("gpt-5.2-pro") is None


def test_every_sourced_row_is_in_the_table_and_the_table_is_dated_today_or_before() -> None:
    data = json.loads((pathlib.Path(pricing.__file__).parent / "_prices.json").read_text(encoding="utf-8"))
    assert data["as_of"] == PRICES_AS_OF == "2026-12-05"
    for section in ("added", "checked"):
        for model, source in data[section].items():
            assert model in data["models"], model
            assert source.startswith("2026-12-05") and "https://" in source, model


def test_overrides_match_by_date_suffix_only() -> None:
    set_price("my-model", input=1.0, output=2.0)
    assert get_price("my-model-2025-01-01") == Price(input=1.0, output=2.0)
    assert get_price("my-model-large") is None


def test_anthropic_models_are_priced_for_provider_anthropic_only() -> None:
    # Sonnet 4: $3 in, $3.75 cache write (5 min), $0.30 cache hit, $15 out per 1M tokens.
    assert get_price("claude-sonnet-4-20250514") is None  # not an OpenAI model
    assert get_price("claude-3-5-haiku-latest", "anthropic") == get_price("claude-3-5-haiku", "anthropic")
    assert get_price("chatgpt-4o-latest") != get_price("gpt-4o")  # OpenAI's -latest is its own row
    assert get_price("claude-sonnet-4-20250514", "anthropic") == Price(
        input=3.0, output=15.0, cached_input=0.3
    )
    cost = estimate_cost(
        "claude-sonnet-4-20250514",
        input_tokens=1000,  # 600 uncached + 300 read + 100 written
        output_tokens=200,
        cached_input_tokens=300,
        cache_write_input_tokens=100,
        provider="anthropic",
    )
    assert cost == pytest.approx((600 * 3.0 + 300 * 0.3 + 100 * 3.75 + 200 * 15.0) / 1e6)
    assert estimate_cost("claude-nonesuch", input_tokens=1, output_tokens=1, provider="anthropic") is None


def test_one_hour_cache_writes_are_priced_at_twice_input() -> None:
    # Sonnet 4: 5-minute writes $3.75 (1.25x), 1-hour writes $6 (2x) per 1M tokens.
    def cost(**extra: Any) -> float | None:
        return estimate_cost(
            "claude-sonnet-4-20250514",
            input_tokens=1000,  # 600 uncached + 300 read + 100 written (40 of them for 1 hour)
            output_tokens=200,
            cached_input_tokens=300,
            cache_write_input_tokens=100,
            provider="anthropic",
            **extra,
        )

    assert cost(cache_write_1h_input_tokens=40) == pytest.approx(
        (600 * 3.0 + 300 * 0.3 + 60 * 3.75 + 40 * 6.0 + 200 * 15.0) / 1e6
    )
    assert cost(cache_write_1h_input_tokens=0) == cost()  # the old call shape is unchanged
    with pytest.raises(ValueError, match="cache_write_1h_input_tokens"):
        cost(cache_write_1h_input_tokens=101)
    # For OpenAI (no write surcharge) both TTLs cost the input rate.
    assert estimate_cost(
        "gpt-4o",
        input_tokens=100,
        output_tokens=0,
        cache_write_input_tokens=10,
        cache_write_1h_input_tokens=10,
    ) == pytest.approx(100 * 2.5 / 1e6)


def test_a_user_price_wins_over_the_anthropic_table() -> None:
    set_price("claude-haiku-4-5", input=100.0, output=100.0)
    cost = estimate_cost("claude-haiku-4-5-20251001", input_tokens=10, output_tokens=0, provider="anthropic")
    assert cost == pytest.approx(10 * 100.0 / 1e6)


def test_both_tables_are_dated() -> None:
    from rlm_toolkit.pricing import ANTHROPIC_PRICES_AS_OF, PRICES_AS_OF

    for as_of in (PRICES_AS_OF, ANTHROPIC_PRICES_AS_OF):
        assert len(as_of) == 10 and as_of[4] == as_of[7] == "-"


@pytest.mark.parametrize("model", ["", "my-local-llama", "claude-3-opus", "ft:gpt-4o-mini:acme::x1"])
def test_unpriced_models_give_none(model: str) -> None:
    assert get_price(model) is None
    assert estimate_cost(model, input_tokens=10, output_tokens=10) is None
    assert estimate_cost(None, input_tokens=10, output_tokens=10) is None


def test_estimate_cost_arithmetic() -> None:
    # gpt-4o: 2.50 in, 1.25 cached in, 10.00 out per 1M tokens.
    assert estimate_cost("gpt-4o", input_tokens=1_000_000, output_tokens=0) == pytest.approx(2.5)
    assert estimate_cost("gpt-4o-2024-08-06", input_tokens=1000, output_tokens=500) == pytest.approx(
        (1000 * 2.5 + 500 * 10.0) / 1e6
    )
    assert estimate_cost(
        "gpt-4o", input_tokens=1000, output_tokens=0, cached_input_tokens=400
    ) == pytest.approx((600 * 2.5 + 400 * 1.25) / 1e6)
    # No cached rate -> cached tokens cost the normal input rate.
    assert estimate_cost("gpt-3.5-turbo", input_tokens=1000, output_tokens=0, cached_input_tokens=1000) == (
        pytest.approx(1000 * 0.5 / 1e6)
    )
    assert estimate_cost("gpt-4o", input_tokens=0, output_tokens=0) == 0.0


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_estimate_cost_rejects_nonsense_counts(bad: object) -> None:
    with pytest.raises(ValueError, match="input_tokens must be an int >= 0"):
        estimate_cost("gpt-4o", input_tokens=bad, output_tokens=0)  # type: ignore[arg-type]


def test_set_price_overrides_family_and_new_models() -> None:
    set_price("gpt-4o", input=1.0, output=2.0)
    assert get_price("gpt-4o-2024-08-06") == Price(input=1.0, output=2.0, cached_input=None)
    assert get_price("gpt-4o-mini") == Price(input=0.15, output=0.6, cached_input=0.075)  # untouched
    set_price("my-local-llama", input=0.0, output=0.0)
    assert estimate_cost("my-local-llama-2025-01-01", input_tokens=100, output_tokens=100) == 0.0
    # Another model whose name starts with it is not guessed to cost the same (#22.4).
    assert estimate_cost("my-local-llama-8b", input_tokens=100, output_tokens=100) is None
    pricing._reset_overrides()
    assert get_price("gpt-4o") == Price(input=2.5, output=10.0, cached_input=1.25)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"input": -1.0, "output": 1.0}, "input must be a finite number >= 0"),
        ({"input": 1.0, "output": float("nan")}, "output must be a finite number >= 0"),
        ({"input": 1.0, "output": "2"}, "output must be a number"),
    ],
)
def test_set_price_rejects_nonsense(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        set_price("x", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        set_price("", input=1.0, output=1.0)


def test_load_prices_both_shapes(tmp_path: pathlib.Path) -> None:
    wrapped = tmp_path / "wrapped.json"
    wrapped.write_text(json.dumps({"models": {"acme-1": {"input": 3, "output": 4, "cached_input": 1}}}))
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({"gpt-4o": {"input": 9, "output": 9}}))
    load_prices(wrapped)
    load_prices(str(bare))
    assert get_price("acme-1-2026") == Price(input=3.0, output=4.0, cached_input=1.0)
    assert get_price("gpt-4o") == Price(input=9.0, output=9.0, cached_input=None)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "invalid JSON at line 1"),
        ("[1, 2]", "top level must be a JSON object"),
        ('{"m": {"input": 1}}', "price of 'm' lacks 'output'"),
        ('{"m": {"input": -1, "output": 1}}', "m.input must be a finite number >= 0"),
        ('{"models": 3}', "'models' must be an object"),
        ('{"m": 5}', "price of 'm' must be an object"),
    ],
)
def test_load_prices_bad_file_is_one_line_value_error(
    tmp_path: pathlib.Path, content: str, problem: str
) -> None:
    path = tmp_path / "prices.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        load_prices(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"cannot read prices from {path}: ")
    assert problem in message
    assert get_price("m") is None  # nothing merged from a bad file


def test_load_prices_missing_file(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match=f"cannot read prices from {missing}: No such file or directory"):
        load_prices(missing)


def test_no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing touched the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert estimate_cost("gpt-5-mini-2025-08-07", input_tokens=1000, output_tokens=1000) == pytest.approx(
        (1000 * 0.25 + 1000 * 2.0) / 1e6
    )


# -- set_price re-entered, and the garbage collector inside set_price ---------------------------
# A user callback may reprice from on_llm_end. An abandoned stream is noticed by a finalizer
# whenever the GC runs -- possibly on a thread inside set_price holding its lock -- but the
# finalizer only queues it: the reaper thread ends its span (and calls on_llm_end) later. A
# set_price on the same thread while one holds the lock is still possible (a user's ``__del__``
# or signal handler), so the lock stays reentrant and a nested update is not lost.


class _RunWhileHeld:
    """Once armed, the next acquisition of the wrapped lock runs ``action`` holding it."""

    def __init__(self, lock: Any, action: Callable[[], None]) -> None:
        self.lock = lock
        self.action = action
        self.armed = False
        self.ran = 0

    def __enter__(self) -> _RunWhileHeld:
        self.lock.acquire()
        if self.armed:
            self.armed = False
            self.ran += 1
            self.action()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.lock.release()


class _Repricer(BaseCallback):
    """Prices a model from on_llm_end, as an app that learns prices at run time might."""

    def __init__(self) -> None:
        self.ended = 0

    def on_llm_end(self, response: Any, **kwargs: Any) -> None:
        self.ended += 1
        set_price("inner-model", input=1.0, output=2.0)


@pytest.fixture
def repricer() -> Iterator[tuple[_Repricer, Callable[[], int]]]:
    """Real HTTP to the offline server, our instrumentation, a callback that calls set_price, and
    a stream abandoned in a reference cycle (automatic GC off, so only a forced collection
    notices it). The reaper thread is paused (its ``drain`` does nothing): the test ends the
    stream with the real :func:`_reaper.drain` it is given. Earlier leftovers are ended first."""
    cb = _Repricer()
    tp, lp, mp = TracerProvider(), LoggerProvider(), MeterProvider()
    was = gc.isenabled()
    real_drain = _reaper.drain
    rlm_toolkit.uninstrument()
    with OpenAIServer() as server, pytest.MonkeyPatch.context() as patch:
        patch.setattr(_reaper, "drain", lambda: 0)
        with _reaper._drain_lock:  # wait out a drain the reaper thread may be in
            pass
        gc.collect()
        real_drain()
        client = openai.OpenAI(base_url=server.base_url, api_key="sk-test-pricing", max_retries=0)
        rlm_toolkit.instrument(tracer_provider=tp, logger_provider=lp, meter_provider=mp, callbacks=[cb])
        gc.disable()
        try:
            stream = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "Hello!"}], stream=True
            )
            next(iter(stream))
            cycle: list[Any] = [stream]
            cycle.append(cycle)  # only the cyclic GC can notice this stream now
            del stream, cycle
            yield cb, real_drain
            real_drain()
        finally:
            if was:
                gc.enable()
            rlm_toolkit.uninstrument()
            client.close()
            tp.shutdown()
            lp.shutdown()
            mp.shutdown()


def _on_thread(outer: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def target() -> None:
        try:
            outer()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(15)
    assert not worker.is_alive(), "deadlock: set_price re-entered holding its lock"
    assert errors == []


def test_gc_inside_set_price_leaves_the_repricing_callback_to_the_reaper(
    repricer: tuple[_Repricer, Callable[[], int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    cb, drain = repricer
    seen: list[tuple[int, int, dict[str, Price]]] = []

    def collect() -> None:
        collected = gc.collect()  # the abandoned stream's finalizer only queues it here
        seen.append((collected, len(_reaper._PENDING), dict(pricing._overrides)))
        assert cb.ended == 0  # on_llm_end did not run inside the collection

    lock = _RunWhileHeld(pricing._lock, collect)
    monkeypatch.setattr(pricing, "_lock", lock)
    lock.armed = True
    _on_thread(lambda: set_price("outer-model", input=3.0, output=4.0))
    ((collected, queued, overrides),) = seen
    assert collected > 0 and queued == 1 and overrides == {}
    assert (cb.ended, pricing._overrides) == (0, {"outer-model": Price(input=3.0, output=4.0)})
    assert drain() == 1  # what the reaper does: the span ends, on_llm_end reprices, once
    assert drain() == 0
    assert cb.ended == 1
    assert pricing._overrides == {
        "inner-model": Price(input=1.0, output=2.0),
        "outer-model": Price(input=3.0, output=4.0),
    }


def test_set_price_lock_is_reentrant(monkeypatch: pytest.MonkeyPatch) -> None:
    lock = _RunWhileHeld(pricing._lock, lambda: set_price("inner-model", input=1.0, output=2.0))
    monkeypatch.setattr(pricing, "_lock", lock)
    lock.armed = True
    _on_thread(lambda: set_price("outer-model", input=3.0, output=4.0))
    assert lock.ran == 1
    assert pricing._overrides == {
        "inner-model": Price(input=1.0, output=2.0),
        "outer-model": Price(input=3.0, output=4.0),
    }


def test_a_nested_set_price_during_the_merge_is_not_lost() -> None:
    class RepricingTable(Mapping[str, Price]):
        """A table whose merge runs a nested set_price half-way (on this thread, as a ``__del__``
        or signal handler could at any allocation)."""

        def __init__(self, prices: dict[str, Price]) -> None:
            self.prices = prices
            self.nested = 0

        def __getitem__(self, key: str) -> Price:
            if not self.nested:
                self.nested += 1
                set_price("inner-model", input=1.0, output=2.0)
            return self.prices[key]

        def __iter__(self) -> Iterator[str]:
            return iter(self.prices)

        def __len__(self) -> int:
            return len(self.prices)

    table = RepricingTable({"outer-model": Price(input=3.0, output=4.0)})
    _on_thread(lambda: pricing._replace(table))
    assert table.nested == 1
    assert pricing._overrides == {
        "inner-model": Price(input=1.0, output=2.0),
        "outer-model": Price(input=3.0, output=4.0),
    }
