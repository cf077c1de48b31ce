"""Teams' texts at the hub: read one at a time by the registered reader; without one, the device is told."""

from __future__ import annotations

import asyncio

from hub.core.errors import LinkDown
from hub.core.transport import TeamText
from hub.relay.team_texts import NO_READER, QUEUE, TeamTexts
from tests.inproc import eventually


async def test_texts_go_to_the_reader_or_get_the_no_reader_answer_and_a_full_queue_drops() -> None:
    answers: list[str] = []

    async def reply(text: str) -> None:
        answers.append(text)

    async def failing_reply(text: str) -> None:
        raise LinkDown("radio not connected")

    texts = TeamTexts()
    runner = asyncio.create_task(texts.run())
    try:
        texts.take("lora", TeamText("!000000d1", "Nord", "B 42 OK", "k1", reply))
        await eventually(lambda: answers == [NO_READER], 10)
        texts.take("lora", TeamText("!000000d1", "Nord", "B 42 OK", "k2", failing_reply))
        await eventually(lambda: texts.counters["no_reader"] == 2, 10)  # logged; the reader goes on

        read: list[tuple[str, str]] = []

        async def reader(link: str, text: TeamText) -> None:
            read.append((link, text.text))

        texts.read_with(reader)
        texts.take("sine", TeamText("2001", "Nord", "B 43 ILT", "k3", reply))
        await eventually(lambda: read == [("sine", "B 43 ILT")], 10)
        assert answers == [NO_READER] and texts.counters["read"] == 1
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    for number in range(QUEUE + 1):  # nobody reads now: the queue fills, then drops
        texts.take("lora", TeamText("!000000d1", "Nord", "B 42 OK", f"q{number}", reply))
    assert texts.counters["dropped"] == 1
