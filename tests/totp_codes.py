"""TOTP codes for tests that run against real time."""

from __future__ import annotations

import time

from appliance.identity.totp import STEP_SECONDS, code_at


class CodeSource:
    """Codes of one secret, each for a step the server still accepts and not used before.

    The server accepts the previous, current and next step, each once and in
    increasing order, so three codes fit in one 30-second step; a fourth waits
    for the next step.
    """

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.last_step = 0
        self.last_code = ""

    def next(self) -> str:
        while True:
            current = int(time.time() // STEP_SECONDS)
            step = max(current - 1, self.last_step + 1)
            if step <= current + 1:
                self.last_step = step
                self.last_code = code_at(self.secret, step)
                return self.last_code
            time.sleep(STEP_SECONDS - time.time() % STEP_SECONDS + 0.05)
