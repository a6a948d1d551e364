"""The lapnode daemon: an aiohttp application that serves feeds to peers and subscribes to theirs."""
