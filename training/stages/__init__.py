"""The training stages, each as data for training.loop.fit: what it trains, on which batches, with which loss."""
