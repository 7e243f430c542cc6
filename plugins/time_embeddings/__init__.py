"""First-party time embeddings: how each frame's time is injected into its visual tokens."""
