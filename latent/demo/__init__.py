"""The procedural demo world and the demo-model trainer; the server never imports this."""
