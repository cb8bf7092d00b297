"""The shared core of assetsearch: settings, errors, encoders, vectors, catalog, media."""
