"""The host engine: security contexts on a stock kernel. Plain Python; nothing here imports Django."""
