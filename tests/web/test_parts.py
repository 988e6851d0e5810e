"""The dashboard's pure parts, without Redis: the DAG layout, session cookies, the timeline, escaping."""

from __future__ import annotations

import itertools

from starlette.requests import Request

from rqdag.shared.model.result import TaskMetrics, TaskResult
from rqdag.shared.model.vocabulary import TaskStatus
from rqdag.web.auth import SESSION_COOKIE, SESSION_TTL_S, Auth, same_origin
from rqdag.web.formatting import script_json
from rqdag.web.layout import NODE_H, NODE_W, layers_of, layout
from rqdag.web.timeline import Event, attempt_of, attempts_from_events, build_timeline, epochs


def request(headers: dict[str, str], host: str = "dash.example:8321") -> Request:
    """A bare HTTP request with ``headers`` (names in lower case)."""
    raw = [(k.encode(), v.encode()) for k, v in {"host": host, **headers}.items()]
    return Request({"type": "http", "method": "POST", "scheme": "http", "path": "/", "headers": raw})


def test_layers_follow_the_longest_path_and_boxes_never_overlap() -> None:
    deps = {"a": [], "b": ["a"], "c": ["b"], "d": ["a", "c"], "e": []}
    order = ["a", "e", "b", "c", "d"]
    assert layers_of(deps, order) == {"a": 0, "e": 0, "b": 1, "c": 2, "d": 3}
    drawing = layout(deps, order)
    boxes = {n.name: n for n in drawing.nodes}
    assert set(boxes) == set(deps) and len(drawing.edges) == 4
    assert boxes["a"].x < boxes["b"].x < boxes["c"].x < boxes["d"].x
    for one, other in itertools.combinations(drawing.nodes, 2):
        apart = abs(one.x - other.x) >= NODE_W or abs(one.y - other.y) >= NODE_H
        assert apart, (one, other)
    assert all(
        n.x >= 0 and n.x + NODE_W <= drawing.width and n.y + NODE_H <= drawing.height for n in drawing.nodes
    )
    long_edge = next(e for e in drawing.edges if (e.source, e.target) == ("a", "d"))
    assert long_edge.d.count("C") + long_edge.d.count("L") >= 3, "a long edge bends through each layer"


def test_the_ordering_removes_crossings_a_naive_order_has() -> None:
    # roots listed x, y; their children listed in the opposite order: barycenters uncross them
    deps = {"x": [], "y": [], "from_y": ["y"], "from_x": ["x"]}
    drawing = layout(deps, ["x", "y", "from_y", "from_x"])
    y_of = {n.name: n.y for n in drawing.nodes}
    assert (y_of["x"] < y_of["y"]) == (y_of["from_x"] < y_of["from_y"])


def test_a_session_cookie_is_signed_bound_to_the_token_and_expires() -> None:
    auth = Auth("a-long-enough-token")
    cookie = auth.new_cookie(now=1000.0)
    signed = request({"cookie": f"{SESSION_COOKIE}={cookie}"})
    session = auth.session(signed, now=1001.0)
    assert session is not None and len(session.csrf) == 64
    assert auth.session(signed, now=1000.0 + SESSION_TTL_S + 1) is None, "expired"
    assert Auth("another-long-token").session(signed, now=1001.0) is None, "a new token ends sessions"
    nonce, expires, signature = cookie.split(".")
    forged = request({"cookie": f"{SESSION_COOKIE}={nonce}.{int(expires) + 9999}.{signature}"})
    assert auth.session(forged, now=1001.0) is None
    assert Auth(None).session(signed) is None and not Auth(None).enabled


def test_same_origin_takes_the_origin_else_the_referer() -> None:
    assert same_origin(request({"origin": "http://dash.example:8321"}))
    assert same_origin(request({"referer": "http://dash.example:8321/runs/x"}))
    assert not same_origin(request({"origin": "http://evil.example"}))
    assert not same_origin(request({"origin": "null", "referer": "http://evil.example/"}))
    assert not same_origin(request({}))


def test_attempts_come_from_the_events_and_are_completed_by_the_results() -> None:
    events = [
        Event("1000-0", 1.0, {"kind": "started", "task": "a", "token": "1-x", "worker": "w1"}),
        Event("2000-0", 2.0, {"kind": "retry", "task": "a", "token": "1-x", "status": "failure"}),
        Event("3000-0", 3.0, {"kind": "started", "task": "a", "token": "2-y", "worker": "w2"}),
        Event("3500-0", 3.5, {"kind": "lost", "task": "b", "token": "1-z", "worker": "w3"}),
        Event("4000-0", 4.0, {"kind": "resume", "epoch": "2"}),
        Event("5000-0", 5.0, {"kind": "started", "task": "c", "token": "1-q", "worker": "w1"}),
    ]
    assert attempt_of("12-abc") == 12 and attempt_of(None) is None and attempt_of("x-1") is None
    seen = attempts_from_events(events, epoch_now=2)
    assert [(a.task, a.attempt, a.outcome, a.epoch) for a in seen] == [
        ("a", 1, "retry", 1),
        ("a", 2, "running", 1),
        ("c", 1, "running", 2),
    ]
    final = TaskResult(TaskStatus.SUCCESS, metrics=TaskMetrics(3.1, 3.9, 0.8, 2, "w2"))
    timeline = build_timeline(events, {"a": final}, {}, epoch_now=2)
    last = next(a for a in timeline if a.task == "a" and a.attempt == 2)
    assert (last.status, last.outcome, last.started_at, last.finished_at) == ("success", "finished", 3.1, 3.9)
    audit = [{"kind": "resume", "epoch": 1, "task": "b"}]
    assert epochs(events, 2, 0.5, audit) == [
        {"epoch": 1, "started_at": 0.5, "rerun": []},
        {"epoch": 2, "started_at": 4.0, "rerun": ["b"]},
    ]


def test_json_inside_a_script_element_cannot_close_it() -> None:
    text = script_json({"name": "</script><b>&"})
    assert "<" not in text and ">" not in text and "&" not in text
