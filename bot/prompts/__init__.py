"""Discussion prompts: the bundled essays, custom prompts, their queue and schedule, and how they are posted."""
