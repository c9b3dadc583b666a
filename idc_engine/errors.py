"""Exceptions raised by the engine; each names the item and the problem."""


class IDCError(Exception):
    """Base class of every error the engine raises on purpose."""


class ManifestError(IDCError, ValueError):
    """A manifest line is malformed; the message names the file, line, field and problem."""

    def __init__(self, path, line_number: int, field: str | None, problem: str):
        self.path = str(path)
        self.line_number = line_number
        self.field = field
        self.problem = problem
        where = f"{self.path}:{line_number}"
        what = f"field {field!r}: " if field else ""
        super().__init__(f"{where}: {what}{problem}")


class ImageLoadError(IDCError, OSError):
    """An image of a pair cannot be used; the message names the pair id, the path and the problem."""

    def __init__(self, pair_id: str | None, path, problem: str):
        self.pair_id = pair_id
        self.path = str(path)
        self.problem = problem
        who = f"pair {pair_id!r}: " if pair_id is not None else ""
        super().__init__(f"{who}image {self.path}: {problem}")
