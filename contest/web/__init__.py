"""The web layer: the aiohttp app, its routes and views, the front door and the answer lane."""
