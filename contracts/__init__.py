"""flopex contracts: what is traded."""
