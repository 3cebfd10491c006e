"""`GET /`: the tenant's chat page — plain HTML and JavaScript, no build step.

The page streams answers from `POST /ask` (server-sent events) token by token, shows
citations under each answer and keeps the conversation in the browser only: the
proxy stores nothing about it, and Reset simply forgets it.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from app.services import current_services

blueprint = Blueprint("chat_page", __name__)


@blueprint.get("/")
def chat_page():
    config = current_services().config
    return render_template("chat.html", tenant=config.tenant, display_name=config.display_name or config.tenant)
