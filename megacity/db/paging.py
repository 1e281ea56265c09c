"""Page sizes of list queries (kept apart from the models: the API's schemas need them)."""

MAX_PAGE = 500  # rows per page of a list query, at most
