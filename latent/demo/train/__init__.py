"""Training of the bundled demo model (open_clip, frozen MiniLM text tower) on the demo world."""
