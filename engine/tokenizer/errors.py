"""The tokenizer's errors, apart so that every part of the package can raise them."""


class TokenizerError(Exception):
    """A tokenizer problem a user can act on, in one line."""


class TokenizerCancelled(TokenizerError):
    def __init__(self, message: str = "tokenizer training cancelled"):
        super().__init__(message)
