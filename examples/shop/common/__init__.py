"""Small helpers the shop's Python services share (standard library only)."""
