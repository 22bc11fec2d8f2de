"""A bounded load generator for the release tests: `rate` requests a second
through one address, every `slow_every`-th to `/slow` (2 s), each on a new
connection, for at most `duration` seconds and `rate * duration` requests."""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field


@dataclass
class Outcome:
    status: int  # 0: the request failed without an answer
    body: str
    sent: float


@dataclass
class Load:
    host: str
    port: int
    rate: float = 50.0
    duration: float = 20.0
    slow_every: int = 10
    path: str = "/"
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Load:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> list[Outcome]:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=self.duration + 10)
        return self.outcomes

    def _run(self) -> None:
        total = int(self.rate * self.duration)
        began = time.monotonic()
        with ThreadPoolExecutor(max_workers=48) as pool:
            for n in range(total):
                if self._stop.is_set():
                    break
                delay = began + n / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                path = "/slow" if self.slow_every and n % self.slow_every == 0 else self.path
                pool.submit(self._one, path)

    def _one(self, path: str) -> None:
        sent = time.time()
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            outcome = Outcome(resp.status, resp.read().decode(errors="replace"), sent)
        except (OSError, http.client.HTTPException) as exc:
            outcome = Outcome(0, repr(exc), sent)
        finally:
            conn.close()
        self.outcomes.append(outcome)

    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status != 200]

    def versions(self, since: float = 0.0) -> Counter[str]:
        return Counter(o.body for o in self.outcomes if o.status == 200 and o.sent >= since)
