"""Routes of events (local happenings): as articles, plus ``?from=&to=``."""

from .authorship import authored_by_caller, checked_author, expected_author
from .errors import json_response
from .http import http
from .requests import list_params, page_response, read_json, request_key


class EventsRoutes:
    @http("GET", "/api/events", cached="events")
    def list_events(self, request):
        params = list_params(request, "tag", "q", "from", "to")
        return page_response(request, self.events_rpc.list(**params), params)

    @http("GET", "/api/events/<event_id>", cached="events")
    def get_event(self, request, event_id):
        return json_response(self.events_rpc.get(event_id))

    @http("POST", "/api/events")
    def create_event(self, request):
        caller, body = self.auth.caller(request), read_json(request)
        key = request_key(request, caller, body)
        event = self.events_rpc.create(authored_by_caller(caller, body), request_key=key)
        self.cache.invalidate("events", event["id"])
        return json_response(event, 201, {"Location": f"/api/events/{event['id']}"})

    @http("PUT", "/api/events/<event_id>")
    def update_event(self, request, event_id):
        caller, body = self.auth.caller(request), read_json(request)
        key = request_key(request, caller, body)
        body = checked_author(caller, body)
        event = self.events_rpc.update(event_id, body, expected_author(caller), request_key=key)
        self.cache.invalidate("events", event_id)
        return json_response(event)

    @http("DELETE", "/api/events/<event_id>")
    def delete_event(self, request, event_id):
        caller = self.auth.caller(request)
        key = request_key(request, caller)
        event = self.events_rpc.delete(event_id, expected_author(caller), request_key=key)
        self.cache.invalidate("events", event_id)
        return json_response(event)
