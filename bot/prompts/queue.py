"""The order prompts are posted in: a cycle through everything, nothing repeated before the cycle ends.

Each server's queue holds every prompt once, by position. A prompt is due in
the current cycle until it is posted or skipped in it; then it moves to the
end. When nothing is due, the next cycle begins and everything is due again,
in queue order. A prompt added mid-cycle is due in the current cycle, so it
comes before anything repeats.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bot.prompts.model import QueueEntry


def due_entries(entries: Sequence[QueueEntry], cycle: int, known: Collection[str]) -> list[QueueEntry]:
    """The entries still due in ``cycle``, in order (prompts no longer shipped are left out)."""
    return sorted((e for e in entries if e.last_cycle < cycle and e.prompt_key in known), key=lambda e: e.position)


def next_entry(entries: Sequence[QueueEntry], cycle: int, known: Collection[str]) -> tuple[QueueEntry | None, int]:
    """The next prompt and the cycle it belongs to (``cycle + 1`` once the current one is complete)."""
    due = due_entries(entries, cycle, known)
    if due:
        return due[0], cycle
    again = due_entries(entries, cycle + 1, known)
    return (again[0] if again else None), cycle + 1


def upcoming(entries: Sequence[QueueEntry], cycle: int, known: Collection[str], limit: int) -> list[QueueEntry]:
    """The next ``limit`` prompts, each at most once: what is left of this cycle, then the next cycle's order
    (whatever was already posted in this cycle, by position, comes first there)."""
    due = due_entries(entries, cycle, known)
    done = sorted((e for e in entries if e.last_cycle >= cycle and e.prompt_key in known), key=lambda e: e.position)
    return (due + done)[:limit]
