"""The compiled wheel, its pure-Python twin and a sorted-list model must agree exactly."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from ext import COMPILED
from ext._wheel import TimingWheel as CompiledWheel
from ext.pywheel import TimingWheel as PyWheel

IMPLEMENTATIONS = [CompiledWheel, PyWheel]
# (tick, slot_bits, levels): the default geometry, and tiny ones where every test run
# cascades and overflows all the time.
GEOMETRIES = [(1, 8, 4), (1, 2, 2), (3, 2, 3), (7, 1, 2)]


class ModelWheel:
    """The obvious implementation: a dict, scanned on every advance."""

    def __init__(self, tick: int, start: int) -> None:
        self.tick = tick
        self.now = start
        self.entries: dict[int, tuple[int, int]] = {}

    def schedule(self, ident: int, deadline: int, period: int = 0) -> None:
        self.entries[ident] = (deadline, period)

    def cancel(self, ident: int) -> bool:
        return self.entries.pop(ident, None) is not None

    def advance(self, now: int) -> list[int]:
        self.now = now
        now_tick = (now + 1) // self.tick
        due = sorted((d, i) for i, (d, _) in self.entries.items() if d // self.tick < now_tick)
        for d, i in due:
            period = self.entries[i][1]
            if period:
                nd = d + period
                if nd <= now:
                    nd = d + period * ((now - d) // period + 1)
                self.entries[i] = (nd, period)
            else:
                del self.entries[i]
        return [i for _, i in due]


def test_compiled_extension_is_built() -> None:
    assert COMPILED, "ext was not compiled; run `make install`"


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_fires_in_deadline_order(impl: type) -> None:
    w = impl()
    for ident, deadline in [(5, 30), (1, 10), (3, 20), (2, 10)]:
        w.schedule(ident, deadline)
    assert w.advance(9) == []
    assert w.advance(25) == [1, 2, 3]
    assert len(w) == 1
    assert w.advance(30) == [5]
    assert len(w) == 0


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_past_deadline_fires_on_next_advance_even_at_same_time(impl: type) -> None:
    w = impl(start=1000)
    w.schedule(7, 10)
    assert w.advance(1000) == [7]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_reschedule_and_cancel(impl: type) -> None:
    w = impl()
    w.schedule(1, 100)
    w.schedule(1, 50)
    assert w.deadline(1) == 50
    assert len(w) == 1
    assert w.advance(60) == [1]
    w.schedule(2, 100)
    assert w.cancel(2) is True
    assert w.cancel(2) is False
    assert w.advance(10_000) == []


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_beyond_top_level_range(impl: type) -> None:
    w = impl()
    far = 10**15  # far beyond 2**32 ticks
    w.schedule(1, far)
    assert w.advance(far - 1) == []
    assert w.advance(far) == [1]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_periodic_keeps_phase_and_skips_missed_periods(impl: type) -> None:
    w = impl()
    w.schedule(1, 5, period=10)
    assert w.advance(5) == [1]
    assert w.deadline(1) == 15
    assert w.advance(48) == [1]  # 15, 25, 35, 45 were due: fires once, then next phase point
    assert w.deadline(1) == 55


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_rejects_time_going_backwards_and_bad_geometry(impl: type) -> None:
    w = impl(start=10)
    with pytest.raises(ValueError):
        w.advance(9)
    with pytest.raises(ValueError):
        impl(tick=0)
    with pytest.raises(ValueError):
        impl(levels=1)
    with pytest.raises(ValueError):
        w.schedule(1, 5, period=-1)


class WheelMachine(RuleBasedStateMachine):
    """Random schedule / cancel / reschedule / advance against all three."""

    ids = st.integers(min_value=0, max_value=40)

    @initialize(geometry=st.sampled_from(GEOMETRIES), start=st.integers(0, 1000))
    def setup(self, geometry: tuple[int, int, int], start: int) -> None:
        tick, bits, levels = geometry
        self.tick = tick
        self.wheels = [impl(tick=tick, start=start, slot_bits=bits, levels=levels) for impl in IMPLEMENTATIONS]
        self.model = ModelWheel(tick, start)
        self.cancelled: set[int] = set()

    @rule(
        ident=ids,
        delta=st.one_of(st.integers(-50, 300), st.integers(0, 100_000), st.integers(0, 2**40)),
        period=st.one_of(st.just(0), st.integers(1, 500)),
    )
    def schedule(self, ident: int, delta: int, period: int) -> None:
        deadline = self.model.now + delta
        for w in self.wheels:
            w.schedule(ident, deadline, period)
        self.model.schedule(ident, deadline, period)
        self.cancelled.discard(ident)

    @rule(ident=ids)
    def cancel(self, ident: int) -> None:
        expected = self.model.cancel(ident)
        for w in self.wheels:
            assert w.cancel(ident) is expected
        self.cancelled.add(ident)

    @rule(delta=st.one_of(st.integers(0, 5), st.integers(0, 2_000), st.integers(0, 2**41)))
    def advance(self, delta: int) -> None:
        now = self.model.now + delta
        before = dict(self.model.entries)
        expected = self.model.advance(now)
        for w in self.wheels:
            assert w.advance(now) == expected
        for ident in expected:
            deadline = before[ident][0]
            assert deadline <= now, "fired before its deadline"
            assert ident not in self.cancelled
        # Anything not fired is not yet due, or less than one tick into its last tick.
        for ident, (deadline, _) in self.model.entries.items():
            if ident not in expected:
                assert deadline // self.tick >= (now + 1) // self.tick

    @precondition(lambda self: hasattr(self, "model"))
    @invariant()
    def same_contents(self) -> None:
        for w in self.wheels:
            assert len(w) == len(self.model.entries)
            for ident, (deadline, _) in self.model.entries.items():
                assert w.deadline(ident) == deadline


WheelMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=60, deadline=None)
TestWheelStateful = WheelMachine.TestCase


def test_many_ids_grow_and_shrink_the_id_table_like_the_twin() -> None:
    """Thousands of ids (dense, sparse, negative, huge) through growth and deletion."""
    import random

    rnd = random.Random(7)
    pools = [range(5000), [rnd.randrange(-(2**62), 2**62) for _ in range(3000)], [i * 1024 for i in range(3000)]]
    ids = [i for pool in pools for i in pool]
    c, p = CompiledWheel(), PyWheel()
    for step in range(60_000):
        ident = rnd.choice(ids)
        op = rnd.random()
        if op < 0.55:
            deadline = c.now + rnd.randrange(-10, 200_000)
            c.schedule(ident, deadline)
            p.schedule(ident, deadline)
        elif op < 0.9:
            assert c.cancel(ident) == p.cancel(ident)
        else:
            now = c.now + rnd.randrange(0, 3000)
            assert c.advance(now) == p.advance(now), step
        if step % 5000 == 0:
            assert len(c) == len(p)
            assert all((i in c) == (i in p) and c.deadline(i) == p.deadline(i) for i in ids[::7])
    c.clear()
    assert len(c) == 0 and c.advance(c.now + 10**9) == []
