"""Every route declares who may use it (portal/authz.py): @public or @requires(Action…)."""
from __future__ import annotations

from portal.authz import PUBLIC, Action, declared, public, requires, undeclared_routes


def test_every_route_declares_its_authorization(app):
    assert undeclared_routes(app) == []


def test_a_route_without_a_declaration_is_caught(app):
    """A new page added without @public or @requires fails the check above."""
    from flask import Blueprint

    extra = Blueprint("forgotten", __name__)

    @extra.get("/admin/forgotten")
    def forgotten():  # noqa: ANN202
        return "secret"

    @extra.get("/admin/declared")
    @requires(Action.BUREAU)
    def declared():  # noqa: ANN202
        return "fine"

    @extra.get("/open")
    @public
    def open_page():  # noqa: ANN202
        return "fine"

    app.register_blueprint(extra)
    assert undeclared_routes(app) == ["/admin/forgotten"]


def test_the_admin_area_and_the_console_are_declared_for_their_roles(app):
    by_rule = {rule.rule: declared(app, rule.endpoint) for rule in app.url_map.iter_rules() if rule.endpoint != "static"}
    assert all(v == Action.BUREAU for k, v in by_rule.items() if k.startswith("/admin/"))
    assert all(v == Action.CURATE for k, v in by_rule.items() if k.startswith("/console/datasets"))
    assert by_rule["/"] == PUBLIC and by_rule["/login"] == PUBLIC


def test_declared_roles_are_enforced(client, make_user):
    from tests.conftest import login

    assert client.get("/admin/calendar").status_code == 302  # to the login page
    _, email, password = make_user("citizen")
    login(client, email, password)
    assert client.get("/admin/calendar").status_code == 403
    assert client.get("/console").status_code == 403
