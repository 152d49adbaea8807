"""flopex clearing: what happens after the trade."""
