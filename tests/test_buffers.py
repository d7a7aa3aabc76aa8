"""Exact-slice and property tests for the reframer and the ring buffer."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wakeword.audio.sources import Reframer
from wakeword.stream.buffer import RingBuffer


@given(
    hop=st.integers(1, 700),
    sizes=st.lists(st.integers(0, 2000), min_size=1, max_size=40),
)
@settings(max_examples=200, deadline=None)
def test_reframer_emits_exact_consecutive_hops(hop, sizes):
    ramp = np.arange(sum(sizes), dtype=np.float32)
    reframer = Reframer(hop)
    out, i = [], 0
    for n in sizes:
        out.extend(h.copy() for h in reframer.push(ramp[i : i + n]))
        i += n
    assert all(h.shape == (hop,) for h in out)
    joined = np.concatenate(out) if out else np.zeros(0, np.float32)
    assert np.array_equal(joined, ramp[: len(out) * hop])
    assert reframer.pending == len(ramp) - len(out) * hop


@given(
    capacity=st.integers(1, 500),
    sizes=st.lists(st.integers(0, 1200), min_size=1, max_size=30),
    n=st.integers(0, 500),
)
@settings(max_examples=200, deadline=None)
def test_ring_buffer_latest_is_the_tail_of_everything_written(capacity, sizes, n):
    n = min(n, capacity)
    ramp = np.arange(1, sum(sizes) + 1, dtype=np.float32)
    ring = RingBuffer(capacity)
    i = 0
    for size in sizes:
        ring.write(ramp[i : i + size])
        i += size
        expected = np.concatenate([np.zeros(capacity, np.float32), ramp[:i]])[len(ramp[:i]) + capacity - n :]
        assert np.array_equal(ring.latest(n), expected)
    assert ring.total == len(ramp)


def test_ring_buffer_views_are_read_only_and_not_reallocated():
    ring = RingBuffer(8)
    base = ring._data
    ring.write(np.arange(5, dtype=np.float32))
    view = ring.latest(4)
    with pytest.raises(ValueError):
        view[0] = 1.0
    ring.write(np.arange(20, dtype=np.float32))
    assert ring._data is base
    assert np.array_equal(ring.latest(8), np.arange(12, 20, dtype=np.float32))
    with pytest.raises(ValueError):
        ring.latest(9)


def test_ring_buffer_since_returns_audio_from_an_absolute_sample():
    ring = RingBuffer(10)
    ring.write(np.arange(25, dtype=np.float32))
    assert np.array_equal(ring.since(20), np.arange(20, 25, dtype=np.float32))
    assert np.array_equal(ring.since(0), np.arange(15, 25, dtype=np.float32))  # clipped to capacity
