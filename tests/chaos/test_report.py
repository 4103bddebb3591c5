"""Fault labels on the timeline: no two on one line overlap, none runs off the picture."""

from __future__ import annotations

from itertools import pairwise

from chaos.report import WIDTH, label_extent, label_lanes


def test_close_labels_take_separate_lines() -> None:
    lanes = label_lanes([(100.0, "SIGKILL auth"), (110.0, "restart auth"), (400.0, "heal pim")])

    assert lanes[0] != lanes[1]
    assert lanes[2] == 0


def test_lines_hold_no_overlapping_labels() -> None:
    labels = [(80.0 + 7 * i, f"fault number {i}") for i in range(30)]

    lanes = label_lanes(labels)

    for lane in set(lanes):
        extents = sorted(
            label_extent(x, text)[:2]
            for (x, text), n in zip(labels, lanes, strict=True)
            if n == lane
        )
        for (_, right), (left, _) in pairwise(extents):
            assert right < left


def test_label_near_right_edge_ends_at_line() -> None:
    left, right, at_end = label_extent(WIDTH - 10.0, "break-glass key rotated to breakglass-1")

    assert at_end
    assert right == WIDTH - 10.0
    assert left > 0
