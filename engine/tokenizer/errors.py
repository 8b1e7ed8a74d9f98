"""The tokenizer's errors, apart so that every part of the package can raise them."""

from engine.errors import UserError


class TokenizerError(UserError):
    """A tokenizer problem a user can act on, in one line."""


class TokenizerCancelled(TokenizerError):
    def __init__(self, message: str = "tokenizer training cancelled"):
        super().__init__(message)
