"""FAISS indexes: flat, IVF and HNSW, layers, live generations, snapshots, policy."""
