"""What the bot last told Discord about its commands, so it syncs only on change."""
