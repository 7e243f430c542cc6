"""First-party time codecs: how times are written in text and read back by token id."""
