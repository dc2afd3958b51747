"""Test-only rooms, peers and a websocket client that checks every frame's shape."""
