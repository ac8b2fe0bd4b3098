"""List pages of the Hotjar API: their shape, checked once, and the cursor that links them.

A list answer is `{"results": [...], "next_cursor": ...}`; `next_cursor` is null (or
absent, or empty) on the last page. The shape is checked with a typed msgspec decoder
(in C, without building the records), so a page that is not a page fails early, naming
the field, and is retried like any broken answer.
"""

from __future__ import annotations

import typing as t

import msgspec
from singer_sdk.pagination import BaseAPIPaginator
from typing_extensions import override

from tap_hotjar.errors import HotjarAPIError

if t.TYPE_CHECKING:
    import requests

_HEAD_ATTR = "_hotjar_page_head"
# msgspec decodes the same JSON to the same Python objects as json, about 2x faster.
decode_json = msgspec.json.Decoder().decode


class BrokenPageError(ValueError):
    """A 2xx answer whose body is not a list page; the message names the field."""


class RowHead(msgspec.Struct):
    """Of each listed item, only what paging needs; msgspec skips the rest unread."""

    created_time: t.Any = None


class PageHead(msgspec.Struct):
    """A list page's shape: a `results` list of objects and the optional `next_cursor`."""

    results: list[RowHead]
    next_cursor: str | None = None


_decode_head = msgspec.json.Decoder(PageHead).decode


def page_head(response: requests.Response) -> PageHead:
    """The page's shape, checked and decoded once per response."""
    head = getattr(response, _HEAD_ATTR, None)
    if head is None:
        try:
            head = _decode_head(response.content)
        except msgspec.ValidationError as exc:
            raise BrokenPageError(f"not a page of results ({str(exc)[:160]})") from None
        except msgspec.DecodeError as exc:
            raise BrokenPageError(f"not valid JSON ({str(exc)[:160]})") from None
        setattr(response, _HEAD_ATTR, head)
    return t.cast("PageHead", head)


class PaginationLoopError(HotjarAPIError):
    """The API handed back the cursor it was just sent: the next page would be this one again."""


class HotjarCursorPaginator(BaseAPIPaginator[str | None]):
    """Follows the top-level `next_cursor` until it is empty.

    A reader that has read far enough (the responses stream at its stop point) simply
    stops iterating the SDK's `request_records`, so no further page is requested.
    """

    def __init__(self) -> None:
        super().__init__(None)

    @override
    def get_next(self, response: requests.Response) -> str | None:
        cursor = page_head(response).next_cursor or None
        if cursor is not None and cursor == self.current_value:
            path = response.request.path_url.split("?", 1)[0] if response.request else "?"
            msg = (
                f"Hotjar answered {path} with the next_cursor it was just sent; "
                "stopping instead of reading the same page forever"
            )
            raise PaginationLoopError(msg)
        return cursor

    @override
    def has_more(self, response: requests.Response) -> bool:
        return self.get_next(response) is not None

    @override
    def continue_if_empty(self, response: requests.Response) -> bool:
        # An empty page that still carries a cursor is not the end of the list.
        return self.has_more(response)
