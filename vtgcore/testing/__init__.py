"""Test helpers shipped with vtgcore: tiny models and tokenizers, and contract test classes.

Plugin authors subclass the classes in :mod:`vtgcore.testing.contracts` to check that their plugin
honours the same contract as the first-party ones.
"""
