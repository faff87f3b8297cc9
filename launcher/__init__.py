"""Process launchers that start several of the service's processes together (``sentiment-serve-all``)."""
