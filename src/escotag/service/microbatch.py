"""Micro-batching for the service: concurrent requests are tagged together, one batch at a time.

While a batch runs, new requests queue; the next batch takes all of them (up to max_items), so under load
many small requests cost one encoder call and one matrix product, and the cores are never oversubscribed
by parallel numpy work.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..tagging.ranking import Tagged, Thresholds
from ..tagging.tagger import Tagger
from ..text.postings import Posting


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

    async def tag(self, postings: list[Posting], model: str, thresholds: Thresholds
                  ) -> list[Tagged]:
        """Tags these postings in the next batch; each request's thresholds cut its own lists afterwards, by the
        rule every door uses (``Thresholds.cut``)."""
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(_Job(postings, model, thresholds, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = [await self._queue.get()]
            size = len(jobs[0].postings)
            while size < self.max_items and not self._queue.empty():
                jobs.append(self._queue.get_nowait())
                size += len(jobs[-1].postings)
            items = [p for job in jobs for p in job.postings]
            models = [job.model for job in jobs for _ in job.postings]
            topk = max(job.thresholds.topk for job in jobs)
            try:
                results = await loop.run_in_executor(self._executor, self.tagger.tag_with_models, items, models, topk)
            except Exception as exc:  # every waiting request gets the error, the loop goes on
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            start = 0
            for job in jobs:
                mine = results[start : start + len(job.postings)]
                start += len(job.postings)
                if not job.future.done():
                    job.future.set_result([t._replace(predictions=job.thresholds.cut(t.predictions)) for t in mine])
