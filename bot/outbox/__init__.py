"""Due work: posts, rounds, follow-ups and reminders as rows with a due time and a state."""
