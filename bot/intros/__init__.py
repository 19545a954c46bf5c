"""Introductions: members' profiles, their cards, welcomes and reminders, and the companies they work for."""
