"""versioned: a model whose published parameters say how it answers."""
