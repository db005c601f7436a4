"""A small but real OpenID Connect provider for the tests of unified sign-in (tests/test_oidc.py,
tests/browser/test_oidc_browser.py), served by Werkzeug on 127.0.0.1 in a thread: discovery,
/authorize (a consent page for one configured person; or at once, approving or denying),
/token (checks the code, its redirect URI, the PKCE verifier and the client secret), /jwks,
/userinfo. ID tokens are RS256 JWTs signed with joserfc (Authlib's successor for JOSE).

Knobs for the tests that must see the portal refuse: `person` (the claims of whoever signs in),
`decision` ("consent" shows the page, "approve"/"deny" answer at once), `id_token_changes`
(claims to override in the next ID tokens: a wrong nonce, an expired exp, another iss or aud),
`sign_with` (another key: a bad signature).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import html
import secrets
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

CLIENT_ID = "dongchangfu-portal"
CLIENT_SECRET = "test-client-secret-" + "x" * 16
PERSON = {
    "sub": "370000199001011234-sub",
    "name": "孙实名",
    "email": "sun@example.cn",
    "email_verified": True,
    "real_name_level": 3,
}


def new_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": secrets.token_hex(4), "use": "sig", "alg": "RS256"})


class Provider:
    def __init__(self, client_id: str = CLIENT_ID, client_secret: str = CLIENT_SECRET) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.key = new_key()
        self.sign_with: RSAKey | None = None
        self.person: dict = dict(PERSON)
        self.decision = "approve"
        self.id_token_changes: dict = {}
        self.issuer = ""  # set when it runs
        self.codes: dict[str, dict] = {}
        self.tokens: dict[str, dict] = {}
        self.token_requests = 0
        self.down = False  # every endpoint answers 503

    # ------------------------------------------------------------------ the WSGI app

    def __call__(self, environ: dict, start_response) -> Iterator[bytes]:
        request = Request(environ)
        routes = {
            "/.well-known/openid-configuration": self.discovery,
            "/authorize": self.authorize,
            "/token": self.token,
            "/jwks": self.jwks,
            "/userinfo": self.userinfo,
        }
        handler = routes.get(request.path)
        if self.down:
            response = Response("down", status=503)
        elif handler is None:
            response = Response("not found", status=404)
        else:
            response = handler(request)
        return response(environ, start_response)

    def discovery(self, request: Request) -> Response:
        return _json(
            {
                "issuer": self.issuer,
                "authorization_endpoint": self.issuer + "/authorize",
                "token_endpoint": self.issuer + "/token",
                "jwks_uri": self.issuer + "/jwks",
                "userinfo_endpoint": self.issuer + "/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
                "scopes_supported": ["openid", "profile", "email"],
                "claims_supported": ["sub", "name", "email", "email_verified", "real_name_level", "acr"],
            }
        )

    def jwks(self, request: Request) -> Response:
        return _json(KeySet([self.key]).as_dict(private=False))

    def authorize(self, request: Request) -> Response:
        args = request.values
        problems = []
        if args.get("client_id") != self.client_id:
            problems.append("unknown client")
        if args.get("response_type") != "code":
            problems.append("response_type must be code")
        if "openid" not in (args.get("scope") or "").split():
            problems.append("scope must include openid")
        if args.get("code_challenge_method") != "S256" or not args.get("code_challenge"):
            problems.append("PKCE S256 required")
        if not args.get("redirect_uri", "").startswith("http://"):
            problems.append("bad redirect_uri")
        if problems:
            return Response("; ".join(problems), status=400)
        decision = request.form.get("decision") if request.method == "POST" else self.decision
        if decision == "consent":
            return self._consent_page(args)
        back = {"state": args.get("state", "")}
        if decision != "approve":
            back.update(error="access_denied", error_description="the person declined")
        else:
            code = secrets.token_urlsafe(24)
            self.codes[code] = {
                "redirect_uri": args["redirect_uri"],
                "challenge": args["code_challenge"],
                "nonce": args.get("nonce"),
                "person": dict(self.person),
                "at": time.time(),
            }
            back["code"] = code
        return Response(status=302, headers={"Location": args["redirect_uri"] + "?" + urlencode(back)})

    def _consent_page(self, args) -> Response:
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">' for k, v in args.items()
        )
        body = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>统一身份认证（测试）</title></head>
<body><main><h1>统一身份认证（测试）</h1>
<p>以 <strong>{html.escape(self.person.get("name", ""))}</strong> 的身份登录
「{html.escape(self.client_id)}」？</p>
<form method="post" action="/authorize">{hidden}
<button name="decision" value="approve">同意并登录</button>
<button name="decision" value="deny">拒绝</button></form></main></body></html>"""
        return Response(body, content_type="text/html; charset=utf-8")

    def token(self, request: Request) -> Response:
        self.token_requests += 1
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
        if request.authorization and request.authorization.type == "basic":
            client_id, secret = request.authorization.username, request.authorization.password
        if client_id != self.client_id or not secrets.compare_digest(secret or "", self.client_secret):
            return _json({"error": "invalid_client"}, 401)
        if request.form.get("grant_type") != "authorization_code":
            return _json({"error": "unsupported_grant_type"}, 400)
        grant = self.codes.pop(request.form.get("code", ""), None)  # a code works once
        if grant is None or time.time() - grant["at"] > 60:
            return _json({"error": "invalid_grant", "error_description": "unknown or used code"}, 400)
        if request.form.get("redirect_uri") != grant["redirect_uri"]:
            return _json({"error": "invalid_grant", "error_description": "redirect_uri differs"}, 400)
        verifier = request.form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        if not verifier or challenge != grant["challenge"]:
            return _json({"error": "invalid_grant", "error_description": "PKCE verifier does not match"}, 400)
        access = secrets.token_urlsafe(24)
        person = grant["person"]
        self.tokens[access] = person
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": person["sub"],
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            "nonce": grant["nonce"],
            **{k: v for k, v in person.items() if k != "sub"},
            **self.id_token_changes,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, key)
        return _json(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
                "scope": "openid profile email",
            }
        )

    def userinfo(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        person = self.tokens.get(header.removeprefix("Bearer ").strip())
        if not header.startswith("Bearer ") or person is None:
            return _json({"error": "invalid_token"}, 401)
        return _json(dict(person))


def _json(data: dict, status: int = 200) -> Response:
    import json

    return Response(json.dumps(data, ensure_ascii=False), status=status, content_type="application/json")


@contextlib.contextmanager
def running_provider(**kwargs) -> Iterator[Provider]:
    """The provider on 127.0.0.1 at a free port, for the duration of the block."""
    provider = Provider(**kwargs)
    server = make_server("127.0.0.1", 0, provider, threaded=True)
    provider.issuer = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield provider
    finally:
        server.shutdown()
        thread.join(5)


def portal_config(settings, files_store: dict, provider: Provider, **extra) -> dict:
    """create_app's configuration for the tests' portal with unified sign-in through `provider`
    (the bureau requiring level 3 for research and commercial applications)."""
    return {
        "instance": settings.instance_path,
        "database_url": settings.database_url,
        **files_store,
        "search_backend": settings.search_backend,
        "TESTING": True,
        "oidc_issuer": provider.issuer,
        "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret,
        "oidc_required_level": 3,
        **extra,
    }
