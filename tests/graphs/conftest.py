from tests.scripted_team import team  # noqa: F401  (the fixture, shared with the CLI tests)
