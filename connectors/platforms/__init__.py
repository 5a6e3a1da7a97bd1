"""Named platform connectors (Mastodon, Bluesky Jetstream, X filtered stream, …), run from a sources file.

Each module here registers its kind with `connectors.sources.source_kind` (an options model and a
builder); `connectors.sources.kinds` imports every module of this package that does not start with an
underscore, so a new platform is one new module. Shared helpers live in `connectors.platforms._common`.
"""
