def clone_initializer(initializer):
    """A fresh copy of `initializer` for each sublayer, so seeded ones differ."""
    return initializer.__class__.from_config(initializer.get_config())
