"""The reward baseline of the project's policy-gradient controllers.

Two controllers learn a policy over a search space's decisions with REINFORCE: the multi-trial
``reinforce`` searcher (orchestrator) and ENAS' LSTM controller (trainables.oneshot). Both subtract
this baseline from the reward; it lives in the lowest layer so that both may import it (trainables
must not import the orchestrator). Plain floats, no numpy or torch.
"""

from __future__ import annotations


class MovingAverageBaseline:
    """Bias-corrected exponential moving average: no pull towards 0 in the first updates."""

    def __init__(self, momentum: float = 0.9) -> None:
        self.momentum = momentum
        self.numerator = 0.0
        self.denominator = 0.0

    def update(self, value: float) -> None:
        self.numerator = self.momentum * self.numerator + (1 - self.momentum) * value
        self.denominator = self.momentum * self.denominator + (1 - self.momentum)

    def value(self) -> float:
        return self.numerator / self.denominator if self.denominator else 0.0

    def state_dict(self) -> dict:
        return {"numerator": self.numerator, "denominator": self.denominator}

    def load_state_dict(self, state: dict) -> None:
        self.numerator, self.denominator = state["numerator"], state["denominator"]
