"""HTTP trigger (function key): the last sweep summary and the live ledger records, as JSON."""

import json

import azure.functions as func

from autoheal import handlers
from autoheal.runtime import get_runtime

bp = func.Blueprint()


@bp.function_name("status")
@bp.route(route="status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def status(req: func.HttpRequest) -> func.HttpResponse:
    try:
        limit = max(1, min(500, int(req.params.get("limit", "50"))))
    except ValueError:
        return func.HttpResponse('{"error": "limit must be an integer"}', status_code=400, mimetype="application/json")
    body = handlers.status(get_runtime(), limit=limit)
    return func.HttpResponse(json.dumps(body, indent=2), mimetype="application/json")
