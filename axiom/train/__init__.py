"""Training: losses, optimizers, schedulers, the fit loop, data helpers, certified and mixed-precision training.

Example:
    >>> import axiom.train
    >>> axiom.train.__name__
    'axiom.train'
"""
