"""Abuse limits per client: wrong credentials and sign-in requests (the `limits` package).

Moving windows kept in this process's memory: with N dispatchers behind a balancer a client
gets up to N times the limit, still far from enough to guess a 256-bit token. A refused
client is told when to come back (429 with Retry-After).
"""

import math
import time
from dataclasses import dataclass, field

from fastapi import HTTPException
from limits import RateLimitItem, RateLimitItemPerHour, RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter


@dataclass
class Guard:
    """Counts failures and sign-in requests per client (and per address asked for)."""

    failures_per_minute: int = 10
    requests_per_hour: int = 5
    _limiter: MovingWindowRateLimiter = field(
        default_factory=lambda: MovingWindowRateLimiter(MemoryStorage()))

    @property
    def _failures(self) -> RateLimitItem:
        return RateLimitItemPerMinute(self.failures_per_minute)

    @property
    def _requests(self) -> RateLimitItem:
        return RateLimitItemPerHour(self.requests_per_hour)

    def _refuse(self, item: RateLimitItem, keys: tuple[str, ...], what: str) -> None:
        reset = self._limiter.get_window_stats(item, *keys).reset_time
        wait = max(1, math.ceil(reset - time.time()))
        raise HTTPException(429, f"too many {what} from this client: try again in {wait} s",
                            headers={"Retry-After": str(wait)})

    def check(self, client: str) -> None:
        """429 when this client has failed too often lately."""
        if not self._limiter.test(self._failures, "failure", client):
            self._refuse(self._failures, ("failure", client), "failed sign-ins or wrong tokens")

    def failed(self, client: str) -> None:
        """Count one wrong token, cookie or code."""
        self._limiter.hit(self._failures, "failure", client)

    def request(self, client: str, address: str) -> None:
        """Count one sign-in link asked for; 429 past the limit (per client and address)."""
        for keys in (("request", client), ("request-to", address.lower())):
            if not self._limiter.hit(self._requests, *keys):
                self._refuse(self._requests, keys, "sign-in links asked for")
