"""The compiled ResultBuffer and its twin produce identical batches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ext import COLUMNS
from ext._buffer import ResultBuffer as CompiledBuffer
from ext.pybuffer import ResultBuffer as PyBuffer

IMPLEMENTATIONS = [CompiledBuffer, PyBuffer]

rows = st.tuples(
    st.integers(0, 2**40),  # monitor_id
    st.integers(0, 2**60),  # ts_us
    st.booleans(),
    st.integers(0, 10**9),  # latency_us
    st.integers(0, 999),  # status_code
    st.integers(0, 30),  # error_code
    st.integers(-1, 10**7),
    st.integers(-1, 10**7),
    st.integers(-1, 10**7),
    st.integers(-1, 10**7),
    st.one_of(st.none(), st.text(max_size=20)),
)


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_flush_returns_columns_and_empties(impl: type) -> None:
    buf = impl(4)
    assert buf.flush() is None
    assert buf.append(1, 1000, True, 250, 200, 0, 10, 20, -1, 30)
    assert buf.append(2, 2000, False, 900, 0, 3, error="connection refused")
    batch = buf.flush()
    assert len(buf) == 0
    assert batch["monitor_id"].tolist() == [1, 2]
    assert batch["ok"].tolist() == [1, 0]
    assert batch["tls_us"].tolist() == [-1, -1]
    assert batch["error_rows"].tolist() == [1]
    assert batch["error_texts"] == ["connection refused"]
    assert buf.flush() is None


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
def test_full_buffer_drops_and_counts(impl: type) -> None:
    buf = impl(2)
    assert buf.append(1, 1, True, 1) and buf.append(2, 2, True, 1)
    assert buf.full
    assert buf.append(3, 3, True, 1) is False
    assert buf.dropped == 1
    assert buf.flush()["monitor_id"].tolist() == [1, 2]
    assert buf.append(4, 4, True, 1)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.lists(rows, max_size=40), max_size=5), capacity=st.integers(1, 50))
def test_twin_matches_compiled(batches: list[list[tuple]], capacity: int) -> None:
    a, b = CompiledBuffer(capacity), PyBuffer(capacity)
    for batch in batches:
        for row in batch:
            *fields, error = row
            assert a.append(*fields, error=error) == b.append(*fields, error=error)
        fa, fb = a.flush(), b.flush()
        assert (fa is None) == (fb is None)
        if fa is not None:
            for name in COLUMNS:
                assert fa[name].dtype == fb[name].dtype
                np.testing.assert_array_equal(fa[name], fb[name])
            np.testing.assert_array_equal(fa["error_rows"], fb["error_rows"])
            assert fa["error_texts"] == fb["error_texts"]
    assert a.dropped == b.dropped
