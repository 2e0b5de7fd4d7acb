"""The one error the tokenizer engine reports to its user: bad input, naming the argument."""

from __future__ import annotations

#: Exit code for bad input (argparse uses the same).
EXIT_BAD_INPUT = 2
#: Exit code of ``check`` when a check fails.
EXIT_CHECK_FAILED = 1


class TokenizerInputError(Exception):
    """Bad input: ``str(error)`` is one line that starts with the argument at fault."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        self.message = " ".join(message.split())  # always one line
        super().__init__(f"{argument}: {self.message}")
