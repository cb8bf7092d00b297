"""The shared core of assetsearch: catalog, index, query, models, media, demo; settings, errors."""
