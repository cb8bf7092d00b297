"""FAISS indexes: base protocol, flat / IVF / HNSW, layers, live generations, snapshots, policy."""
