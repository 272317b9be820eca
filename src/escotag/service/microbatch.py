"""Micro-batching for the service: concurrent requests are tagged together, one batch at a time.

While a batch runs, new requests queue; the next batch takes all of them (up to max_items), so under load
many small requests cost one encoder call and one matrix product, and the cores are never oversubscribed
by parallel numpy work. Each request keeps its own model and thresholds (the tagger cuts each item's list by its
own); a batch that fails is tried again request by request, so one bad request fails alone. ``switch`` puts
another tagger in place between two batches: a batch is answered by one tagger, whole, and says which.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import NamedTuple

from ..tagging.ranking import Tagged, Thresholds
from ..tagging.tagger import Tagger
from ..text.postings import Posting


class Answer(NamedTuple):
    results: list[Tagged]
    plan: str  # the encoder plan of the tagger that answered


@dataclass
class _Job:
    postings: list[Posting]
    model: str
    thresholds: Thresholds
    future: asyncio.Future = field(repr=False)


class MicroBatcher:
    def __init__(self, tagger: Tagger, max_items: int = 512) -> None:
        self.tagger, self.max_items = tagger, max_items
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="escotag-tagger")
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def switch(self, tagger: Tagger) -> None:
        """Answer with this tagger from the next batch on (call on the event loop)."""
        self.tagger = tagger

    async def tag(self, postings: list[Posting], model: str, thresholds: Thresholds) -> Answer:
        """Tags these postings in the next batch, each list cut by these thresholds."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(postings, model, thresholds, future))
        return await future

    async def _run(self) -> None:
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].postings)
            while size < self.max_items and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                size += len(jobs[-1].postings)
            if not await self._answer(jobs) and len(jobs) > 1:
                for job in jobs:
                    await self._answer([job])

    async def _answer(self, jobs: list[_Job]) -> bool:
        """Tags the jobs' postings in one call and settles their futures; False when that call failed (the
        futures of a single job then carry its error)."""
        items = [p for job in jobs for p in job.postings]
        models = [job.model for job in jobs for _ in job.postings]
        cuts = [job.thresholds for job in jobs for _ in job.postings]
        tagger = self.tagger
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, tagger.tag_each, items, models, cuts)
        except Exception as exc:
            if len(jobs) > 1:
                return False
            if not jobs[0].future.done():
                jobs[0].future.set_exception(exc)
            return True
        start = 0
        for job in jobs:
            mine = results[start : start + len(job.postings)]
            start += len(job.postings)
            if not job.future.done():
                job.future.set_result(Answer(mine, tagger.plan.name))
        return True
