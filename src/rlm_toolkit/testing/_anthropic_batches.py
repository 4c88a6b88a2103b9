"""The Message Batches API offline: ``/v1/messages/batches`` create, retrieve, list, cancel,
delete and results (JSONL), the shapes the ``anthropic`` SDK parses.

A batch's requests are answered when it is created (each as ``POST /v1/messages`` would answer
it: the demo model or a scripted reply; a request the API would reject becomes an ``errored``
result), but it reports ``in_progress`` until it is first retrieved (``results()`` retrieves it
first), so ``cancel`` has something to cancel: a batch canceled while in progress ends with
every request ``canceled``. Each server keeps its own batches. Offline simplifications:
``results_url`` is relative to the server (the SDK resolves it against its base URL), batches
never expire, and ``list`` pages by ``limit``/``after_id``/``before_id`` over this server's
batches, newest first.
"""

from __future__ import annotations

import json
import threading
import weakref
from datetime import datetime, timedelta, timezone
from typing import Any

from rlm_toolkit.testing._anthropic_endpoints import plan
from rlm_toolkit.testing._anthropic_wire import message_json
from rlm_toolkit.testing._script import Script
from rlm_toolkit.testing._wire import Answer, ApiError, Call

PATH = "messages/batches"
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: dict[str, dict[str, Any]] = {}  # id -> {"batch": ..., "results": [...]}


_STORES: weakref.WeakKeyDictionary[Script, _Store] = weakref.WeakKeyDictionary()
_STORES_LOCK = threading.Lock()


def _store(script: Script) -> _Store:
    with _STORES_LOCK:
        store = _STORES.get(script)
        if store is None:
            store = _STORES[script] = _Store()
        return store


def _now() -> str:
    return datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")


def _answer(params: Any, call: Call) -> dict[str, Any]:
    """One request's result: ``succeeded`` with the message, or ``errored`` with the envelope."""
    if not isinstance(params, dict):
        error = ApiError(400, "params: Input should be a valid dictionary")
    else:
        try:
            message, _ = plan(Call(body=params, script=call.script))
            return {"type": "succeeded", "message": message_json(message)}
        except ApiError as exc:
            error = exc
    kind = "invalid_request_error" if error.status < 500 else "api_error"
    return {"type": "errored", "error": {"type": "error", "error": {"type": kind, "message": error.message}}}


def create(call: Call) -> Answer:
    requests = call.body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise ApiError(400, "requests: List should have at least 1 item after validation")
    ids = [r.get("custom_id") if isinstance(r, dict) else None for r in requests]
    for index, custom_id in enumerate(ids):
        if not isinstance(custom_id, str) or not custom_id:
            raise ApiError(400, f"requests.{index}.custom_id: Field required")
    if len(set(ids)) != len(ids):
        raise ApiError(400, "requests: custom_id values must be unique within a batch")
    results = [{"custom_id": r["custom_id"], "result": _answer(r.get("params"), call)} for r in requests]
    created = datetime.now(timezone.utc)
    batch_id = call.new_id("msgbatch_offline")
    batch = {
        "id": batch_id,
        "type": "message_batch",
        "processing_status": "in_progress",
        "request_counts": {**dict.fromkeys(_COUNTS, 0), "processing": len(results)},
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "expires_at": (created + timedelta(hours=24)).isoformat().replace("+00:00", "Z"),
        "ended_at": None,
        "cancel_initiated_at": None,
        "archived_at": None,
        "results_url": None,
    }
    store = _store(call.script)
    with store.lock:
        store.batches[batch_id] = {"batch": batch, "results": results}
    return Answer(body=dict(batch))


def _entry(store: _Store, batch_id: str) -> dict[str, Any]:
    entry = store.batches.get(batch_id)
    if entry is None:
        raise ApiError(404, f"Message batch {batch_id!r} not found.")
    return entry


def _end(entry: dict[str, Any]) -> None:
    """An unfinished batch ends: its results count, or (canceling) every request is canceled."""
    batch = entry["batch"]
    if batch["processing_status"] == "ended":
        return
    if batch["processing_status"] == "canceling":
        entry["results"] = [
            {"custom_id": r["custom_id"], "result": {"type": "canceled"}} for r in entry["results"]
        ]
    counts = dict.fromkeys(_COUNTS, 0)
    for result in entry["results"]:
        counts[result["result"]["type"]] += 1
    batch.update(
        processing_status="ended",
        request_counts=counts,
        ended_at=_now(),
        results_url=f"/v1/{PATH}/{batch['id']}/results",
    )


def retrieve(call: Call) -> Answer:
    store = _store(call.script)
    with store.lock:
        entry = _entry(store, call.path_param)
        _end(entry)
        return Answer(body=dict(entry["batch"]))


def cancel(call: Call) -> Answer:
    store = _store(call.script)
    with store.lock:
        batch = _entry(store, call.path_param)["batch"]
        if batch["processing_status"] == "in_progress":
            batch.update(processing_status="canceling", cancel_initiated_at=_now())
        return Answer(body=dict(batch))


def delete(call: Call) -> Answer:
    store = _store(call.script)
    with store.lock:
        batch = _entry(store, call.path_param)["batch"]
        if batch["processing_status"] != "ended":
            raise ApiError(400, "Message batches can only be deleted once they have finished processing.")
        del store.batches[call.path_param]
    return Answer(body={"id": call.path_param, "type": "message_batch_deleted"})


def results(call: Call) -> Answer:
    store = _store(call.script)
    with store.lock:
        entry = _entry(store, call.path_param)
        if entry["batch"]["processing_status"] != "ended":
            raise ApiError(400, "Message batch results are not available until processing ends.")
        lines = [json.dumps(result) for result in entry["results"]]
    return Answer(body=("\n".join(lines) + "\n").encode("utf-8"))


def list_batches(call: Call) -> Answer:
    query = call.body  # a GET: the query parameters
    try:
        limit = int(query.get("limit") or 20)
    except ValueError:
        raise ApiError(400, "limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise ApiError(400, "limit: Input should be between 1 and 1000")
    store = _store(call.script)
    with store.lock:
        batches = [dict(e["batch"]) for e in reversed(store.batches.values())]
    ids = [b["id"] for b in batches]
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None:
        batches = batches[ids.index(after) + 1 :] if after in ids else []
    elif before is not None:
        batches = batches[: ids.index(before)] if before in ids else []
        batches = batches[-limit:]
    page, more = batches[:limit], len(batches) > limit
    return Answer(
        body={
            "data": page,
            "has_more": more,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        }
    )


def route(method: str, path: str) -> tuple[Any, str] | None:
    """(endpoint, batch id) of a batches ``path`` (no ``/v1/``, no query), or None."""
    if path == PATH:
        return {"POST": create, "GET": list_batches}.get(method), ""
    if not path.startswith(PATH + "/"):
        return None
    parts = path[len(PATH) + 1 :].split("/")
    if len(parts) == 1 and parts[0]:
        return {"GET": retrieve, "DELETE": delete}.get(method), parts[0]
    if len(parts) == 2 and parts[0]:
        action = {("POST", "cancel"): cancel, ("GET", "results"): results}.get((method, parts[1]))
        return action, parts[0]
    return None
