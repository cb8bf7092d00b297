"""The write path: scan a library, diff against the catalog, decode, encode, commit."""
