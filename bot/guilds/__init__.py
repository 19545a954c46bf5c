"""A server's settings: its language, time zone and channels, and who changed them."""
