"""Safe decoding of media files."""
