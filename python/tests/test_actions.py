"""Recording a module's actions, replaying them against new code, comparing sessions."""

from __future__ import annotations

from pathlib import Path

import pytest

import recfile


def _price(order: dict) -> dict:
    if order["qty"] <= 0:
        raise ValueError("qty must be positive")
    return {"total": order["qty"] * order["unit"], "currency": "EUR"}


def _record(path: Path, fn=_price, name: str = "agent") -> None:
    with recfile.Recorder(path, append=path.exists()) as rec, rec.session(name) as s:
        for qty in [1, 2, 0, 5]:
            try:
                s.record_call("price", {"qty": qty, "unit": 3}, fn)
            except ValueError:
                pass
        recorded_lookup = s.recorded("lookup")(lambda key: {"key": key, "found": key != "missing"})
        assert recorded_lookup("a") == {"key": "a", "found": True}
        recorded_lookup("missing")
        seq = s.record_action("note", {"text": "hi"}, output=[1, 2], duration=0.25)
        assert seq == 6
        s.record_action("fail", {"x": 1}, error="Timeout: took too long")


def test_actions_read_back(tmp_path: Path) -> None:
    path = tmp_path / "a.rec"
    _record(path)
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None
        actions = sess.actions()
        assert [a.seq for a in actions] == list(range(8))
        assert [a.kind for a in actions] == ["price"] * 4 + ["lookup"] * 2 + ["note", "fail"]
        assert actions[1].input == {"qty": 2, "unit": 3}
        assert actions[1].output == {"total": 6, "currency": "EUR"}
        assert actions[2].output is None and actions[2].error == "ValueError: qty must be positive"
        assert actions[6].duration == pytest.approx(0.25) and actions[6].output == [1, 2]
        assert actions[7].error == "Timeout: took too long"
        assert actions[0].duration >= 0 and actions[0].ts > 1.6e9
        # Actions are frames of their own stream.
        assert [s.name for s in sess.streams] == ["actions"]
        assert len(sess.replay()) == 8 and sess.replay().streams == ["actions"]


def test_record_call_reraises_and_decorator_keeps_name(tmp_path: Path) -> None:
    with recfile.Recorder(tmp_path / "r.rec") as rec, rec.session("s") as s:
        with pytest.raises(ValueError, match="positive"):
            s.record_call("price", {"qty": 0, "unit": 1}, _price)

        @s.recorded("double")
        def double(x: int) -> int:
            """Doubles."""
            return 2 * x

        assert double(21) == 42 and double.__name__ == "double" and double.__doc__ == "Doubles."
        with pytest.raises(TypeError):
            s.record_call("bad", object(), lambda x: x)


def test_replay_engine_matches_and_diverges(tmp_path: Path) -> None:
    path = tmp_path / "e.rec"
    _record(path)
    f = recfile.open(path)
    sess = f.last_session
    assert sess is not None

    def same(action: recfile.Action):
        if action.kind == "price":
            return _price(action.input)
        if action.kind == "lookup":
            return {"key": action.input, "found": action.input != "missing"}
        if action.kind == "note":
            return [1, 2]
        raise RuntimeError("Timeout: took too long")

    report = recfile.ReplayEngine(sess).run(same)
    assert report.replayed == 8
    # 'fail' was recorded as an error; replaying it as an error matches when the text does
    # (here it differs: RuntimeError: … vs the recorded text).
    assert report.matched + report.diverged == 8

    def changed(action: recfile.Action):
        if action.kind == "price":
            order = action.input
            if order["qty"] <= 0:
                return {"total": 0, "currency": "EUR"}  # no longer raises
            return {"total": order["qty"] * order["unit"] + 1, "currency": "EUR"}
        if action.kind == "lookup":
            raise KeyError(action.input)
        return same(action)

    report = recfile.ReplayEngine(sess, only_kinds=["price", "lookup"]).run(changed)
    types = {(d.seq, d.type) for d in report.divergences}
    assert (0, "output_mismatch") in types and (1, "output_mismatch") in types
    assert (2, "error_vs_success") in types
    assert (4, "success_vs_error") in types and (5, "success_vs_error") in types
    assert report.replayed == 6 and report.diverged == 6 and report.match_rate == 0.0
    assert any(d.diff for d in report.divergences if d.type == "output_mismatch")
    d = report.to_dict()
    assert d["replayed"] == 6 and "render" not in d
    assert "diverged" in report.render().lower() or "6" in report.render()

    first = recfile.ReplayEngine(sess, stop_on_first_divergence=True, only_kinds=["price"]).run(changed)
    assert first.stopped_early and first.diverged == 1

    # A comparison function sees decoded values.
    seen = []

    def loose(expected, actual) -> bool:
        seen.append((expected, actual))
        return expected["currency"] == actual["currency"]

    lenient = recfile.ReplayEngine(sess, only_kinds=["price"]).run(changed, compare=loose)
    assert lenient.matched == 3 and lenient.diverged == 1  # the error-vs-success one
    assert seen and isinstance(seen[0][0], dict)


def test_replay_engine_propagates_compare_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.rec"
    _record(path)
    with recfile.open(path) as f:
        sess = f.last_session
        assert sess is not None

        def broken(expected, actual) -> bool:
            raise ZeroDivisionError("bad compare")

        with pytest.raises(ZeroDivisionError):
            recfile.ReplayEngine(sess, only_kinds=["price"]).run(lambda a: _price(a.input) if a.input["qty"] else {}, compare=broken)


def test_compare_sessions(tmp_path: Path) -> None:
    path = tmp_path / "two.rec"
    _record(path, name="a")

    def other(order: dict) -> dict:
        return {"total": order["qty"] * order["unit"], "currency": "USD"}

    _record(path, fn=other, name="b")
    with recfile.open(path) as f:
        a, b = f.sessions
        same = recfile.compare_sessions(a, a)
        assert same.is_identical and not same and same.matching == 8
        diff = recfile.compare_sessions(a, b)
        assert not diff.is_identical and diff
        assert diff.differing == 4 and diff.matching == 4
        assert {e["kind"] for e in diff.entries if e["status"] == "differing"} == {"price"}
        assert "price" in diff.render()
        assert diff.to_dict()["summary"]["differing"] == 4
