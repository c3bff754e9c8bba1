"""News items: what articles and events have in common.

Both services store, validate, list and announce the same fields
(``authorUID``, ``title``, ``description``, ``body``, ``status``, ``tags``,
``imagesUID``, ``meta`` and the dates); each adds only what is its own (its
``meta`` counter, an event's date and date filter). The two services import
this package; neither imports the other, so each stays deployable and
migratable on its own.

- ``news.models``: the columns, the ``?tag=`` side table;
- ``news.schemas``: the wire schema and the list query;
- ``news.items``: create, get, list, update, delete, each change announced.
"""
