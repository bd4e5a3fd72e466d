"""The pure core: offers -> quote -> price -> desired state -> planned changes.

Nothing here does I/O, reads the clock or logs: every input, the current time included,
comes in as a parameter, so every rule can be tested exhaustively and replayed exactly.
"""
