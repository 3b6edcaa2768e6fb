"""A small OAuth 2.0 authorization server built on Authlib, for postie's tests.

It is deliberately unlike the bundled mock: opaque access tokens that live a few seconds
(``--ttl``), PKCE required for every authorization code, rotating refresh tokens (the old one is
revoked when a new one is issued), the device grant, client_secret_basic and client_secret_post
with an awkward secret, and a denial path. It listens on 127.0.0.1 only and prints
``listening on http://127.0.0.1:PORT`` once it is ready.

Clients (the secret of both confidential ones is ``p%:+é w/x``):

* ``basic-app`` — confidential, client_secret_basic
* ``post-app``  — confidential, client_secret_post
* ``public-app`` — public (PKCE only), also allowed the device grant

Any loopback redirect URI is accepted on any port (RFC 8252 §7.3). ``/authorize`` approves at
once with a 302, unless ``login_hint=deny`` (then ``error=access_denied``). A device code is
approved on its second poll. ``GET /api/me`` needs a valid bearer token; ``POST /revoke`` revokes a
refresh token (RFC 7009).
"""

import argparse
import logging
import sys
import time
import urllib.parse

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, TokenMixin, grants
from authlib.oauth2.rfc6750 import BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc8628 import DeviceAuthorizationEndpoint, DeviceCodeGrant, DeviceCredentialDict
from flask import Flask, jsonify, redirect, request
from werkzeug.serving import make_server

SECRET = "p%:+é w/x"
USER = {"id": "u-1", "name": "Ada"}


class Client(ClientMixin):
    def __init__(self, client_id, secret, method, grant_types):
        self.client_id = client_id
        self.secret = secret
        self.method = method
        self.grant_types = grant_types

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        return None

    def get_allowed_scope(self, scope):
        return scope or ""

    def check_redirect_uri(self, redirect_uri):
        u = urllib.parse.urlparse(redirect_uri)
        return u.scheme == "http" and u.hostname in ("127.0.0.1", "localhost", "::1")

    def check_client_secret(self, client_secret):
        return self.secret is not None and client_secret == self.secret

    def check_endpoint_auth_method(self, method, endpoint):
        if endpoint == "token":
            return method == self.method
        return True

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


CLIENTS = {
    c.client_id: c
    for c in [
        Client("basic-app", SECRET, "client_secret_basic", ["authorization_code", "refresh_token"]),
        Client("post-app", SECRET, "client_secret_post", ["authorization_code", "refresh_token"]),
        Client(
            "public-app",
            None,
            "none",
            ["authorization_code", "refresh_token", DeviceCodeGrant.GRANT_TYPE],
        ),
    ]
}


class Token(TokenMixin):
    def __init__(self, data, client_id):
        self.data = dict(data)
        self.client_id = client_id
        self.issued_at = time.time()
        self.revoked = False

    def check_client(self, client):
        return client.get_client_id() == self.client_id

    def get_scope(self):
        return self.data.get("scope", "")

    def get_expires_in(self):
        return self.data.get("expires_in", 0)

    def is_expired(self):
        return time.time() >= self.issued_at + self.get_expires_in()

    def is_revoked(self):
        return self.revoked

    def get_user(self):
        return USER

    def get_client(self):
        return CLIENTS[self.client_id]


class Code(dict):
    """An authorization code; Authlib reads the PKCE fields as attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def get_redirect_uri(self):
        return self["redirect_uri"]

    def get_scope(self):
        return self.get("scope", "")

    def get_nonce(self):
        return None

    def get_auth_time(self):
        return None

    def get_acr(self):
        return None

    def get_amr(self):
        return None


CODES = {}
ACCESS = {}
REFRESH = {}
DEVICE = {}
POLLS = {}


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code, request):
        CODES[code] = Code(
            code=code,
            client_id=request.client.get_client_id(),
            redirect_uri=request.payload.redirect_uri,
            scope=request.payload.scope,
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
        )

    def query_authorization_code(self, code, client):
        item = CODES.get(code)
        if item and item["client_id"] == client.get_client_id():
            return item
        return None

    def delete_authorization_code(self, authorization_code):
        CODES.pop(authorization_code["code"], None)

    def authenticate_user(self, authorization_code):
        return USER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        token = REFRESH.get(refresh_token)
        if token and not token.revoked:
            return token
        return None

    def authenticate_user(self, refresh_token):
        return USER

    def revoke_old_credential(self, refresh_token):
        refresh_token.revoked = True


class DeviceGrant(DeviceCodeGrant):
    def query_device_credential(self, device_code):
        return DEVICE.get(device_code)

    def query_user_grant(self, user_code):
        POLLS[user_code] = POLLS.get(user_code, 0) + 1
        if POLLS[user_code] >= 2:
            return USER, True
        return None

    def should_slow_down(self, credential):
        return False


class DeviceEndpoint(DeviceAuthorizationEndpoint):
    INTERVAL = 1
    EXPIRES_IN = 60

    def get_verification_uri(self):
        return request.host_url.rstrip("/") + "/activate"

    def save_device_credential(self, client_id, scope, data):
        DEVICE[data["device_code"]] = DeviceCredentialDict(
            client_id=client_id, scope=scope, expires_at=time.time() + self.EXPIRES_IN, **data
        )


class Revocation(RevocationEndpoint):
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        return REFRESH.get(token_string) or ACCESS.get(token_string)

    def revoke_token(self, token, request):
        token.revoked = True


class Validator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        return ACCESS.get(token_string)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ttl", type=int, default=30, help="access token lifetime in seconds")
    args = parser.parse_args()

    app = Flask(__name__)
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = True
    app.config["OAUTH2_REFRESH_TOKEN_GENERATOR"] = True
    app.config["OAUTH2_TOKEN_EXPIRES_IN"] = {
        "authorization_code": args.ttl,
        "refresh_token": args.ttl,
        DeviceCodeGrant.GRANT_TYPE: args.ttl,
    }

    def save_token(token, request):
        client_id = request.client.get_client_id()
        t = Token(token, client_id)
        ACCESS[token["access_token"]] = t
        if "refresh_token" in token:
            REFRESH[token["refresh_token"]] = t

    server = AuthorizationServer(app, query_client=CLIENTS.get, save_token=save_token)
    server.register_grant(AuthorizationCodeGrant, [CodeChallenge(required=True)])
    server.register_grant(RefreshTokenGrant)
    server.register_grant(DeviceGrant)
    server.register_endpoint(DeviceEndpoint)
    server.register_endpoint(Revocation)
    protect = ResourceProtector()
    protect.register_token_validator(Validator())

    @app.route("/authorize")
    def authorize():
        try:
            grant = server.get_consent_grant(end_user=USER)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)
        user = None if request.args.get("login_hint") == "deny" else USER
        return server.create_authorization_response(grant_user=user, grant=grant)

    @app.route("/token", methods=["POST"])
    def token():
        return server.create_token_response()

    @app.route("/device", methods=["POST"])
    def device():
        return server.create_endpoint_response(DeviceEndpoint.ENDPOINT_NAME)

    @app.route("/revoke", methods=["POST"])
    def revoke():
        return server.create_endpoint_response(Revocation.ENDPOINT_NAME)

    @app.route("/api/me")
    @protect()
    def me():
        return jsonify(USER)

    @app.route("/activate")
    def activate():
        return "enter the code"

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    http = make_server("127.0.0.1", 0, app, threaded=True)
    print(f"listening on http://127.0.0.1:{http.server_port}", flush=True)
    try:
        http.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
