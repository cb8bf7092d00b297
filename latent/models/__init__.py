"""Model specs, the one loader, encoders and the bundled weights."""
