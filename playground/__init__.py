"""The playground: Kakehashi against a local Discord on 127.0.0.1, for trying it without a Discord account
(``python -m bot demo``) and for the end-to-end tests, which drive the same local Discord."""
