"""Every route declares who may use it (portal/authz.py): @public or @requires(Action…)."""

from __future__ import annotations

import pytest

from portal.authz import PUBLIC, Action, declared, public, requires, undeclared_routes
from tests.helpers import login


def test_every_route_declares_its_authorization(app):
    assert undeclared_routes(app) == []


def test_a_route_without_a_declaration_is_caught(app):
    """A new page added without @public or @requires fails the check above."""
    from flask import Blueprint

    extra = Blueprint("forgotten", __name__)

    @extra.get("/admin/forgotten")
    def forgotten():
        return "secret"

    @extra.get("/admin/declared")
    @requires(Action.BUREAU)
    def declared():
        return "fine"

    @extra.get("/open")
    @public
    def open_page():
        return "fine"

    app.register_blueprint(extra)
    assert undeclared_routes(app) == ["/admin/forgotten"]


def test_the_admin_area_and_the_console_are_declared_for_their_roles(app):
    by_rule = {
        rule.rule: declared(app, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    assert all(v == Action.BUREAU for k, v in by_rule.items() if k.startswith("/admin/"))
    assert all(v == Action.CURATE for k, v in by_rule.items() if k.startswith("/console/datasets"))
    assert by_rule["/"] == PUBLIC and by_rule["/login"] == PUBLIC


def test_declared_roles_are_enforced(client, make_user):
    from tests.helpers import login

    assert client.get("/admin/calendar").status_code == 302  # to the login page
    _, email, password = make_user("citizen")
    login(client, email, password)
    assert client.get("/admin/calendar").status_code == 403
    assert client.get("/console").status_code == 403


# ---------------------------------------------------------------------- role × action, every route

# The reviewed table of who may use which route: a new route needs its row here (CONTRIBUTING.md),
# and a changed declaration fails until this table says so too.
ROUTE_ACTIONS = {
    "/": PUBLIC,
    "/account": Action.ACCOUNT,
    "/account/notices": Action.ACCOUNT,
    "/account/follows": Action.FOLLOW,
    "/account/follows/mail": Action.FOLLOW,
    "/follow": Action.FOLLOW,
    "/follows/<int:follow_id>/delete": Action.FOLLOW,
    "/dataset/<name>/favourite": Action.FOLLOW,
    "/feeds/datasets.atom": PUBLIC,
    "/feeds/department/<code>.atom": PUBLIC,
    "/feeds/domain/<name>.atom": PUBLIC,
    "/dataset/<name>/history.atom": PUBLIC,
    "/account/tokens": Action.ACCOUNT,
    "/account/tokens/<int:token_id>/revoke": Action.ACCOUNT,
    "/account/identity/link": Action.ACCOUNT,
    "/account/identity/<int:identity_id>/unlink": Action.ACCOUNT,
    "/admin/": Action.BUREAU,
    "/admin/audit": Action.BUREAU,
    "/admin/audit.csv": Action.BUREAU,
    "/admin/calendar": Action.BUREAU,
    "/admin/duplicates": Action.BUREAU,
    "/admin/evaluation.csv": Action.BUREAU,
    "/admin/tokens/<int:token_id>/quota": Action.BUREAU,
    "/admin/harvest": Action.BUREAU,
    "/admin/licensing": Action.BUREAU,
    "/admin/licensing/grants/<int:grant_id>": Action.BUREAU,
    "/admin/leaks": Action.BUREAU,
    "/admin/outbox": Action.BUREAU,
    "/admin/restrictions": Action.BUREAU,
    "/admin/restrictions/<int:request_id>": Action.BUREAU,
    "/admin/synonyms": Action.BUREAU,
    "/admin/topics": Action.BUREAU,
    "/admin/topics/new": Action.BUREAU,
    "/admin/topics/<int:topic_id>": Action.BUREAU,
    "/admin/pages": Action.BUREAU,
    "/admin/pages/new": Action.BUREAU,
    "/admin/pages/<int:page_id>": Action.BUREAU,
    "/admin/showcase": Action.BUREAU,
    "/admin/showcase/<int:item_id>/<any(approve, reject):decision>": Action.BUREAU,
    "/admin/jobs": Action.BUREAU,
    "/admin/duplicates/send": Action.BUREAU,
    "/admin/jobs/<int:job_id>/retry": Action.BUREAU,
    "/admin/sources": Action.BUREAU,
    "/admin/sources/<int:source_id>": Action.BUREAU,
    "/admin/sources/<int:source_id>/run": Action.BUREAU,
    "/admin/synonyms/<int:synonym_id>/remove": Action.BUREAU,
    "/admin/tenders/new": Action.BUREAU,
    "/admin/users": Action.BUREAU,
    "/admin/users/<int:user_id>/bureau/<any(grant, revoke):state>": Action.BUREAU,
    "/admin/users/<int:user_id>/curator": Action.BUREAU,
    "/admin/users/<int:user_id>/verify-company": Action.BUREAU,
    "/admin/users/<int:user_id>/verify-researcher": Action.BUREAU,
    "/api/3/action/current_package_list_with_resources": PUBLIC,
    "/api/3/action/group_list": PUBLIC,
    "/api/3/action/help_show": PUBLIC,
    "/api/3/action/organization_list": PUBLIC,
    "/api/3/action/organization_show": PUBLIC,
    "/api/3/action/package_list": PUBLIC,
    "/api/3/action/package_search": PUBLIC,
    "/api/3/action/package_show": PUBLIC,
    "/api/3/action/resource_show": PUBLIC,
    "/api/3/action/status_show": PUBLIC,
    "/api/3/action/tag_list": PUBLIC,
    "/api/action/current_package_list_with_resources": PUBLIC,
    "/api/action/group_list": PUBLIC,
    "/api/action/help_show": PUBLIC,
    "/api/action/organization_list": PUBLIC,
    "/api/action/organization_show": PUBLIC,
    "/api/action/package_list": PUBLIC,
    "/api/action/package_search": PUBLIC,
    "/api/action/package_show": PUBLIC,
    "/api/action/resource_show": PUBLIC,
    "/api/action/status_show": PUBLIC,
    "/api/action/tag_list": PUBLIC,
    "/api/data/<name>": PUBLIC,
    "/api/data/<name>/fields": PUBLIC,
    "/api/docs": PUBLIC,
    "/api/me": PUBLIC,
    "/api/openapi.json": PUBLIC,
    "/applications": Action.ACCOUNT,
    "/applications/<int:app_id>": Action.VIEW_APPLICATION,
    "/applications/<int:app_id>/accept": Action.ACT_AS_APPLICANT,
    "/applications/<int:app_id>/answer": Action.ACT_AS_APPLICANT,
    "/applications/<int:app_id>/decide": Action.DECIDE_APPLICATION,
    "/applications/<int:app_id>/decision": Action.VIEW_APPLICATION,
    "/applications/<int:app_id>/decision.pdf": Action.VIEW_APPLICATION,
    "/applications/<int:app_id>/withdraw": Action.ACT_AS_APPLICANT,
    "/apply": Action.ACCOUNT,
    "/care/<state>": PUBLIC,
    "/catalog": PUBLIC,
    "/catalog.<any(ttl, rdf, jsonld):suffix>": PUBLIC,
    "/console": Action.CURATE,
    "/console/applications": Action.REVIEW_APPLICATIONS,
    "/console/datasets/<name>": Action.CURATE,
    "/console/datasets/<name>/edit": Action.CURATE,
    "/console/catalog": Action.CURATE,
    "/console/catalog/confirm": Action.CURATE,
    "/console/datasets/<name>/upload": Action.CURATE,
    "/console/datasets/<name>/uploads": Action.CURATE,
    "/console/uploads/<upload_id>/chunk": Action.CURATE,
    "/console/uploads/<upload_id>/state": Action.CURATE,
    "/console/uploads/<upload_id>/finish": Action.CURATE,
    "/console/uploads/<upload_id>": Action.CURATE,
    "/console/uploads/<upload_id>/masking": Action.CURATE,
    "/console/uploads/<upload_id>/publish": Action.CURATE,
    "/console/uploads/<upload_id>/discard": Action.CURATE,
    "/console/duplicates": Action.CURATE,
    "/console/duplicates/<int:case_id>/propose": Action.CURATE,
    "/console/duplicates/<int:case_id>/confirm": Action.CURATE,
    "/console/duplicates/<int:case_id>/dismiss": Action.CURATE,
    "/console/datasets/<name>/dictionary": Action.CURATE,
    "/console/datasets/<name>/masking": Action.CURATE,
    "/console/datasets/<name>/publish": Action.CURATE,
    "/console/datasets/<name>/reclassify": Action.CURATE,
    "/console/datasets/<name>/sensitive": Action.CURATE,
    "/console/datasets/<name>/sandbox": Action.CURATE,
    "/console/sandbox": Action.OVERSEE_SANDBOX,
    "/console/sandbox/queries/<int:query_id>": Action.OVERSEE_SANDBOX,
    "/console/sandbox/releases/<int:release_id>": Action.DECIDE_RELEASE,
    "/console/datasets/<name>/withdraw": Action.CURATE,
    "/console/errors/<int:report_id>": Action.ANSWER_ERROR_REPORT,
    "/console/feedback": Action.CURATE,
    "/dataset/<name>": PUBLIC,
    "/dataset/<name>.<any(ttl, rdf, jsonld):suffix>": PUBLIC,
    "/dataset/<name>/bundle/<int:table_id>.zip": PUBLIC,
    "/dataset/<name>/datapackage.json": PUBLIC,
    "/dataset/<name>/download/<int:table_id>.<fmt>": PUBLIC,
    "/dataset/<name>/download/<int:table_id>.excel.csv": PUBLIC,
    "/dataset/<name>/errors": Action.ACCOUNT,
    "/dataset/<name>/rating": Action.ACCOUNT,
    "/datasets": PUBLIC,
    "/department/<code>": PUBLIC,
    "/department/<code>/lists": PUBLIC,
    "/department/<code>/lists/<open_class>.<fmt>": PUBLIC,
    "/domain/<path:name>": PUBLIC,
    "/evaluation": PUBLIC,
    "/stats": PUBLIC,
    "/stats.csv": PUBLIC,
    "/stats/department/<code>": PUBLIC,
    "/stats/department/<code>.csv": PUBLIC,
    "/dataset/<name>/stats": PUBLIC,
    "/dataset/<name>/stats.csv": PUBLIC,
    "/open-licence": PUBLIC,
    "/open-licence/<version>": PUBLIC,
    "/favicon.ico": PUBLIC,
    "/grants": Action.ACCOUNT,
    "/sandbox": Action.ACCOUNT,
    "/sandbox/<int:grant_id>": Action.HOLD_GRANT,
    "/sandbox/queries/<int:query_id>": Action.HOLD_GRANT,
    "/sandbox/queries/<int:query_id>/release": Action.HOLD_GRANT,
    "/sandbox/queries/<int:query_id>/output.zip": Action.HOLD_GRANT,
    "/api/sandbox/<int:grant_id>/queries": Action.HOLD_GRANT,
    "/api/sandbox/queries/<int:query_id>": Action.HOLD_GRANT,
    "/grants/<int:grant_id>/download/<token>": Action.HOLD_GRANT,
    "/grants/<int:grant_id>/prepared/<int:job_id>": Action.HOLD_GRANT,
    "/grants/<int:grant_id>/report": Action.HOLD_GRANT,
    "/grants/<int:grant_id>/revoke": Action.REVOKE_GRANT,
    "/lang/<code>": PUBLIC,
    "/licences/<number>": PUBLIC,
    "/licences/": PUBLIC,
    "/lists": PUBLIC,
    "/login": PUBLIC,
    "/login/oidc": PUBLIC,
    "/login/oidc/callback": PUBLIC,
    "/logout": PUBLIC,
    "/register": PUBLIC,
    "/requests": PUBLIC,
    "/requests/<int:request_id>/answer": Action.ANSWER_DATA_REQUEST,
    "/requests/<int:request_id>/route": Action.ROUTE_DATA_REQUEST,
    "/reset": PUBLIC,
    "/reset/<token>": PUBLIC,
    "/search": PUBLIC,
    "/showcase": PUBLIC,
    "/showcase/<int:item_id>/image": PUBLIC,
    "/topics": PUBLIC,
    "/topics/<slug>": PUBLIC,
    "/notices": PUBLIC,
    "/notices/<int:page_id>": PUBLIC,
    "/pages/<kind>": PUBLIC,
    "/tenders": PUBLIC,
    "/tenders/<number>": PUBLIC,
    "/tenders/<number>/award": Action.MANAGE_TENDER,
    "/tenders/<number>/bid": Action.ACCOUNT,
    "/tenders/<number>/bid/withdraw": Action.ACCOUNT,
    "/tenders/<number>/close": Action.MANAGE_TENDER,
    "/tenders/<number>/conclude": Action.MANAGE_TENDER,
    "/tenders/<number>/declare": Action.EVALUATE_TENDER,
    "/tenders/<number>/evaluate": Action.EVALUATE_TENDER,
    "/tenders/<number>/objections": Action.ACCOUNT,
    "/tenders/<number>/objections/<int:objection_id>/answer": Action.MANAGE_TENDER,
    "/tenders/<number>/questions": Action.ACCOUNT,
    "/tenders/<number>/questions/<int:question_id>/answer": Action.MANAGE_TENDER,
    "/tenders/<number>/reopen": Action.MANAGE_TENDER,
    "/tenders/<number>/score/<int:bid_id>": Action.EVALUATE_TENDER,
    "/verify": PUBLIC,
    "/verify/<token>": PUBLIC,
}


def test_every_route_declares_the_action_in_the_table(app):
    by_rule = {
        rule.rule: declared(app, rule.endpoint)
        for rule in app.url_map.iter_rules()
        if rule.endpoint != "static"
    }
    assert by_rule == ROUTE_ACTIONS


ROLES = {  # make_user arguments for each role the table is driven as
    "citizen": {"kind": "citizen"},
    "company": {"kind": "company"},
    "researcher": {"kind": "researcher", "researcher_verified": True},
    "curator": {"curator_of": "dcf-scjgj"},
    "bureau": {"bureau": True},
}


def _routes(app):
    """Every route but static files, with a URL built from harmless values and its methods."""
    # /logout last: it ends the session the rest is driven with
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.endpoint == "accounts.logout", r.rule)):
        if rule.endpoint == "static":
            continue
        values = {}
        for arg, converter in rule._converters.items():
            kind = type(converter).__name__
            values[arg] = (
                1
                if kind == "IntegerConverter"
                else (sorted(converter.items)[0] if kind == "AnyConverter" else "x")
            )
        url = app.url_map.bind("localhost").build(rule.endpoint, values, force_external=False)
        yield rule, url, sorted(m for m in rule.methods if m in ("GET", "POST"))


def _refused_by_route(response) -> bool:
    from flask import g

    return response.status_code == 403 and g.get("refused_by_route") is not None


@pytest.mark.parametrize("role", ["anonymous", *ROLES])
def test_every_route_answers_each_role_as_the_action_table_says(app, make_user, role):
    """Generated from portal/authz.py: for every route and every role, the declared action's
    role-level rule decides — signed out: the login page (401 under /api/); refused: 403
    before the view runs; allowed: the view runs (whatever it then decides on the object)."""
    from flask_wtf.csrf import generate_csrf

    from portal.authz import can
    from portal.models import User

    user = None
    client = app.test_client()
    if role != "anonymous":
        user_id, email, password = make_user(**ROLES[role])
        assert login(client, email, password).status_code == 302
        with app.extensions["portal"].sessions() as s:
            user = s.get(User, user_id)
            s.expunge(user)
    with client:
        client.get("/login")
        token = generate_csrf()  # this client's session token: only authorization decides
    checked = 0
    for rule, url, methods in _routes(app):
        action = declared(app, rule.endpoint)
        for method in methods:
            with client:
                response = client.open(
                    url, method=method, data={"csrf_token": token} if method == "POST" else None
                )
                where = f"{method} {rule.rule} as {role}"
                if action == PUBLIC:
                    assert not _refused_by_route(response), where
                    assert not (
                        response.status_code == 302
                        and "/login" in response.headers.get("Location", "")
                        and method == "GET"
                    ), where
                elif role == "anonymous":
                    if rule.rule.startswith("/api/"):
                        assert response.status_code == 401, where
                    else:
                        assert response.status_code == 302 and "/login" in response.headers["Location"], where
                elif can(user, action):
                    assert not _refused_by_route(response) and response.status_code not in (401, 500), where
                else:
                    assert _refused_by_route(response), where
                checked += 1
    assert checked > 100  # every route, each of its methods


def test_removing_a_routes_declaration_fails_the_url_map_check(app):
    """The check fails on a real route of the portal whose declaration is taken away."""
    view = app.view_functions["licensing.my_grants"]
    kept = view.authorization
    try:
        del view.authorization
        assert undeclared_routes(app) == ["/grants"]
    finally:
        view.authorization = kept
