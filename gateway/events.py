"""Routes of events (local happenings): as articles, plus ``?from=&to=``."""

from news.schemas import EventListQuerySchema, EventSchema

from .apidoc import news_docs, news_views
from .authorship import NEWS_ACCESS, authored_by_caller, checked_author, expected_author
from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json

DOCS = news_docs(
    "events",
    "event",
    news_views("Event", EventSchema, "attending"),
    EventListQuerySchema,
    NEWS_ACCESS,
)


class EventsRoutes:
    @http("GET", "/api/events", cached="events", doc=DOCS["list"])
    def list_events(self, request):
        params = list_params(request, "tag", "q", "from", "to")
        return page_response(request, self.events_rpc.list(**params), params)

    @http("GET", "/api/events/<event_id>", cached="events", doc=DOCS["get"])
    def get_event(self, request, event_id):
        return json_response(self.events_rpc.get(event_id))

    @http("POST", "/api/events", changes="events", doc=DOCS["create"])
    def create_event(self, request):
        caller, body = self.auth.caller(request), read_json(request)
        key = self.request_keys.of(request, caller, body)
        event = self.events_rpc.create(authored_by_caller(caller, body), request_key=key)
        return json_response(event, 201, {"Location": f"/api/events/{event['id']}"})

    @http("PUT", "/api/events/<event_id>", changes="events", doc=DOCS["update"])
    def update_event(self, request, event_id):
        caller, body = self.auth.caller(request), read_json(request)
        key = self.request_keys.of(request, caller, body)
        body = checked_author(caller, body)
        event = self.events_rpc.update(event_id, body, expected_author(caller), request_key=key)
        return json_response(event)

    @http("DELETE", "/api/events/<event_id>", changes="events", doc=DOCS["delete"])
    def delete_event(self, request, event_id):
        caller = self.auth.caller(request)
        key = self.request_keys.of(request, caller)
        event = self.events_rpc.delete(event_id, expected_author(caller), request_key=key)
        return json_response(event)
