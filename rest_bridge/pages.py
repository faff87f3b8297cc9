"""The bridge's web pages: the playground (``/``), file scoring (``/score``) and Swagger UI (``/docs``).

Plain HTML, CSS and a little JavaScript next to this module (``templates/``, ``static/``), no build step.
Swagger UI's files come from the pinned ``flask-swagger-ui`` package, served by the bridge itself: the
pages make no request to another host (the Content-Security-Policy says so to the browser too)."""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from flask import Blueprint, Response, render_template, send_from_directory

from rest_bridge.settings import BridgePolicy

SWAGGER_UI_DIR = Path(flask_swagger_ui.__file__).parent / "dist"
# Only this origin. Swagger UI sets inline styles and shows data: images; nothing else is let through.
CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                           "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def pages_blueprint(policy: BridgePolicy) -> Blueprint:
    # templates/ and static/ sit next to the app factory, where Flask looks for them (static at /static)
    blueprint = Blueprint("pages", __name__)

    @blueprint.after_request
    def security_headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    @blueprint.get("/")
    def playground():
        return render_template("playground.html", active="playground")

    @blueprint.get("/score")
    def score():
        return render_template("score.html", active="score", max_upload_bytes=policy.max_upload_bytes)

    @blueprint.get("/docs")
    def docs():
        return render_template("docs.html", active="docs")

    @blueprint.get("/docs/assets/<path:filename>")
    def docs_asset(filename: str):
        return send_from_directory(SWAGGER_UI_DIR, filename, max_age=3600)

    return blueprint
