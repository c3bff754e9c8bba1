"""Routes of articles and events (filled in by the content work)."""


class ArticlesRoutes:
    pass


class EventsRoutes:
    pass
