"""Small helpers shared by the views."""

from __future__ import annotations

import secrets
import sys
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from flask import Response, current_app, flash, g, jsonify, redirect, request, send_file, url_for
from flask.typing import ResponseReturnValue
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.parser import Parser
from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.wrappers import Response as WerkzeugResponse

from .context import PortalContext
from .errors import DomainError
from .messages import _
from .models import FormSubmission, OutboxMessage
from .search import SearchQuery, SearchResult

T = TypeVar("T")


def portal() -> PortalContext:
    return current_app.extensions["portal"]


def db() -> Session:
    """One session per request, closed at teardown."""
    if "db" not in g:
        g.db = portal().sessions()
    return g.db


def send_stored_file(path: Path, **kwargs: Any) -> Response:
    """A stored file, already authorized by the caller: sent by the portal (send_file: Range,
    ETag, 304), or — with PORTAL_X_ACCEL_PREFIX behind nginx — handed to nginx with
    X-Accel-Redirect, so the bytes go out at nginx's speed from its internal location. nginx
    aliases the local files folder only: with an object store the portal sends local files
    (bundles, copies) itself."""
    prefix = portal().settings.x_accel_prefix
    root = portal().storage.root
    if not prefix or root is None:
        return send_file(path, **kwargs)
    relative = path.resolve().relative_to(root).as_posix()
    response = send_file(
        path, **kwargs
    )  # the headers (type, disposition, ETag) as the portal would send them
    response.direct_passthrough = False
    response.set_data(b"")
    response.headers["X-Accel-Redirect"] = prefix.rstrip("/") + "/" + quote(relative)
    for header in ("Content-Length", "Content-Range", "Accept-Ranges", "Last-Modified"):
        response.headers.pop(header, None)  # nginx sets them from the file itself
    response.status_code = 200
    return response


def part_generation() -> str:
    """The generation rendered parts are valid at (portal/fragments.py), read once per request
    and before the data a part shows is read: a change committed after this read moves it."""
    if "part_generation" not in g:
        g.part_generation = portal().fragments.generation.current()
    return str(g.part_generation)


def kept_part(
    generation: str,
    key: Hashable | None,
    render: Callable[[], T],
    size: Callable[[T], int | None] | None = None,
    share: bool = True,
) -> T:
    """A part of a page every reader with the same key sees: kept rendered, or rendered now.
    `size`: what a kept value costs (None: not kept); text is measured and checked by default.
    `share=False`: kept in this worker only, not in Redis — for keys a client can vary without
    end (a search's words), which only the worker's bounded store may hold."""
    from .fragments import text_size

    # Every key holds the host the request named: a part with an absolute link (the API calls
    # on a dataset page) asked for with a forged Host header is kept for that host only.
    kept_as = None if key is None else (key, request.host_url)
    return portal().fragments.get_or_render(kept_as, generation, render, size or text_size, share=share)


@dataclass(frozen=True)
class ShownDataset:
    """What a dataset page or a data API answer needs of the row when its parts are kept: the
    title and the English one (the page's title), the name (its links), the id and the class
    (the key, the buttons), the download count."""

    id: int
    name: str
    title: str
    edits: dict
    open_class: str
    download_count: int


def shown_dataset(generation: str, name: str) -> ShownDataset | None:
    """What a page or an answer needs of a public dataset's row, kept like the parts: a
    withdrawal, a hold or a reclassification moves the generation at its commit, and the next
    request asks again. None: not public (or not there)."""
    return kept_part(
        generation, ("dataset row", name), lambda: _shown(name), size=lambda f: 1024 if f else None
    )


def _shown(name: str) -> ShownDataset | None:
    from . import catalog

    ds = catalog.get_public_dataset(db(), name, whole=False)
    if ds is None:
        return None
    return ShownDataset(
        ds.id, ds.name, ds.title, dict(ds.edits or {}), ds.open_class or "", ds.download_count
    )


def fresh_search(query: SearchQuery) -> SearchResult:
    """A search whose answer is about to be kept (portal/fragments.py): the index is looked at
    now, not after the Whoosh backend's second of grace, so a sync another process has just
    committed (which moved the generation) is in it."""
    backend = portal().search
    if look_again := getattr(backend, "look_again", None):  # Whoosh; PostgreSQL reads its own
        look_again()
    return backend.search(query)


class KeptInTemplates(Extension):
    """`{% kept "name", key… %}…{% endkept %}` in a template: the body rendered once and kept
    (portal/fragments.py) for every page with the same name, key, language and 关怀版, such as
    the header's menus and the footer, which every page repeats. Nothing of one reader may be
    inside (the store refuses a form's token; a reader's name or menu stays outside)."""

    tags = {"kept"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        key = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            key.append(parser.parse_expression())
        body = parser.parse_statements(("name:endkept",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_kept", [nodes.List(key)]), [], [], body).set_lineno(lineno)

    def _kept(self, key: list, caller: Callable[[], str]) -> str:
        return kept_part(part_generation(), ("template", *key, g.get("lang"), g.get("care")), caller)


# What a signed-in reader's own part holds in place of its forms' secrets while kept: random
# per process (the parts never leave it), so no text of a catalog or a reader can imitate them.
_MARK = secrets.token_hex(8)
TOKEN_MARK, NONCE_MARK = f"csrf-{_MARK}", f"nonce-{_MARK}"


class KeptForTheReader(Extension):
    """`{% mine "name", key… %}…{% endmine %}`: a part that is the signed-in reader's own (the
    account menu, follow buttons, a page's forms), kept for that reader alone in this worker
    and filled with this request's CSRF token and new form nonces. The key holds what the part
    shows of the reader (name, roles, unread count, follow state) and of the request (the
    page's path where a form goes back to it) beyond what the generation covers; the reader,
    their session, the language and 关怀版 are added here. Rendered as usual for anyone not
    signed in."""

    tags = {"mine"}

    def parse(self, parser: Parser) -> nodes.Node:
        lineno = next(parser.stream).lineno
        key = [parser.parse_expression()]
        while parser.stream.skip_if("comma"):
            key.append(parser.parse_expression())
        body = parser.parse_statements(("name:endmine",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_mine", [nodes.List(key)]), [], [], body).set_lineno(lineno)

    def _mine(self, key: list, caller: Callable[[], str]) -> str:
        from flask_login import current_user
        from markupsafe import Markup

        if not current_user.is_authenticated:
            return caller()
        reader = (current_user.id, current_user.session_version, g.get("lang"), g.get("care"))
        text = kept_part(
            part_generation(),
            ("mine", *key, reader),
            lambda: str(_with_marks(caller)),
            size=_marked_size,
            share=False,
        )
        return Markup(_filled(text))


def _with_marks(render: Callable[[], str]) -> str:
    g.form_marks = True
    try:
        return render()
    finally:
        g.pop("form_marks", None)


def _marked_size(text: str) -> int:
    """A reader's part is kept only if every form's secrets in it are the marks (-1: refused)."""
    if text.count('name="csrf_token"') != text.count(TOKEN_MARK) or text.count(
        'name="form_nonce"'
    ) != text.count(NONCE_MARK):
        return -1
    return sys.getsizeof(text)


def _filled(text: str) -> str:
    """The marks replaced: this request's token, a new nonce for each form (plain str: a
    Markup's + and replace would escape what they add)."""
    from flask_wtf.csrf import generate_csrf

    text = str(text)
    if TOKEN_MARK in text:
        text = text.replace(TOKEN_MARK, generate_csrf())
    if NONCE_MARK in text:
        pieces = text.split(NONCE_MARK)
        text = pieces[0] + "".join(form_nonce() + piece for piece in pieces[1:])
    return text


def csrf_token() -> str:
    """The form's CSRF token (templates/_forms.html); its mark inside a reader's kept part."""
    from flask_wtf.csrf import generate_csrf

    return TOKEN_MARK if g.get("form_marks") else generate_csrf()


def back(url: str) -> str:
    """Where this request goes back to when a domain rule refuses it (portal/views/errors.py);
    without it, the page the form was on."""
    g.back = url
    return url


def tell(message: object, category: str = "message") -> None:
    """Show a message on the next page, in the reader's language (a flash keeps text only)."""
    flash(str(message), category)


FORM_NONCE = "form_nonce"  # the hidden field every POST form of templates/_forms.html carries


def form_nonce() -> str:
    """A new nonce for one rendering of a form (its mark inside a reader's kept part)."""
    return NONCE_MARK if g.get("form_marks") else secrets.token_urlsafe(12)


class AlreadyDone(DomainError):
    """The same rendering of a form was posted again: a reload after posting, a page the back
    button restored with its old form, a second click while the first was on its way. (A page
    the browser fetches again is a new form with a new nonce: posting it is a new submission.)"""


def _posted_nonce() -> str | None:
    if request.method != "POST" or request.mimetype not in (
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ):
        return None
    nonce = request.form.get(FORM_NONCE, "")
    return nonce[:32] or None


def read_no_body_before_the_route_allows_it() -> ResponseReturnValue | None:
    """Registered ahead of every hook that reads a body (the CSRF check, the form-nonce check,
    the NUL check). nginx passes an upload chunk on while it arrives (deploy/nginx-portal.conf),
    so a hook reading a body before anyone is known would let a slow anonymous sender hold a
    worker's thread as long as it liked. A request with a body that no route takes (an unknown
    path, a method the route does not allow) is answered now, unread; an upload chunk must be
    bytes (the page's script sends application/octet-stream), anything else is refused unread."""
    has_body = bool(request.content_length or request.headers.get("Transfer-Encoding"))
    if has_body and request.routing_exception is not None:
        raise request.routing_exception
    if request.endpoint == "console.upload_chunk" and request.mimetype not in (
        "",
        "application/octet-stream",
    ):
        return jsonify(error=str(_("数据块须以 application/octet-stream 发送"))), 415
    return None


def refuse_a_form_posted_twice() -> None:
    """Before a POST view runs: a form whose work was done once is not done again; the person
    is told so and sent back. This is the early, cheap answer; done() is the one that holds
    when two posts are in flight together. (The page's script also stops a second click.)"""
    if (nonce := _posted_nonce()) and db().get(FormSubmission, nonce) is not None:
        raise AlreadyDone(_("此表单已提交过，未重复处理"))


def done(message: object = None, to: str | None = None) -> WerkzeugResponse:
    """The view's work succeeded: record the form as done and commit both together (mail
    queued in the transaction goes out after it), tell the person, and go on to `to` (default:
    where `back` points)."""
    s = db()
    if nonce := _posted_nonce():
        s.flush()  # the view's own work first: an error in it is its own, not a second post
        s.add(FormSubmission(nonce=nonce))
        try:
            s.flush()
        except IntegrityError:  # the same form's other post committed first (PostgreSQL waits for it)
            s.rollback()
            raise AlreadyDone(_("此表单已提交过，未重复处理")) from None
    s.commit()
    if message:
        tell(message)
    return redirect(to or g.get("back") or url_for("catalog.home"))


# built once: every signed-in page asks it (the header's count)
_UNREAD = (
    select(func.count())
    .select_from(OutboxMessage)
    .where(
        OutboxMessage.to == bindparam("email"),
        OutboxMessage.read_at.is_(None),
        OutboxMessage.channel != "mail",
    )
)


def unread_notices() -> int:
    """Messages to the signed-in person not yet read on their notices page (the header's count;
    asked only by pages that show it, so a JSON call signed in does not pay for it)."""
    from flask_login import current_user

    if not current_user.is_authenticated:
        return 0
    if "unread_notices" not in g:
        g.unread_notices = db().execute(_UNREAD, {"email": current_user.email}).scalar()
    return int(g.unread_notices or 0)
