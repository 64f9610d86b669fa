"""Shadow and canary: the champion always answers; the canary's share is exact and stable."""

from __future__ import annotations

import pytest

from vampire_detector.rollout import CanaryRouter, ShadowComparator, bucket


def test_the_shadow_counts_agreement_and_returns_the_champions_answer() -> None:
    shadow = ShadowComparator(champion=lambda x: "vampire" if x > 2 else "human",
                              challenger=lambda x: "vampire" if x > 1 else "human")
    assert [shadow(x) for x in range(5)] == ["human", "human", "human", "vampire", "vampire"]
    assert shadow.agree == 4 and shadow.disagree == {("human", "vampire"): 1}
    assert shadow.agreement == pytest.approx(0.8)


def test_a_broken_challenger_never_reaches_the_gate() -> None:
    def broken(_):
        raise RuntimeError("the challenger fell over")

    shadow = ShadowComparator(champion=lambda _: "human", challenger=broken)
    assert [shadow(i) for i in range(3)] == ["human"] * 3
    assert shadow.challenger_errors == 3 and shadow.compared == 0


def test_the_canary_sends_its_share_and_the_same_key_always_the_same_way() -> None:
    keys = [f"traveller-{i}" for i in range(20_000)]
    split = CanaryRouter(0.1).split(keys)
    assert split["challenger"] / len(keys) == pytest.approx(0.1, abs=0.01)
    router = CanaryRouter(0.1)
    assert all(router.route(k) == router.route(k) for k in keys[:100])
    assert CanaryRouter(0.0).split(keys[:500]) == {"champion": 500}
    assert CanaryRouter(1.0).split(keys[:500]) == {"challenger": 500}
    assert 0 <= bucket("x") < 10_000


def test_a_weight_outside_zero_to_one_is_refused() -> None:
    with pytest.raises(ValueError, match="share"):
        CanaryRouter(10)
