"""The ``assetsearch`` command line: the composition root over latent, indexer and service."""
