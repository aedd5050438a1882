"""A JSON request body parsed and validated in one pass by pydantic (`model_validate_json`), for
routes whose bodies are large: FastAPI runs `json.loads` and then validates the Python objects, which
for a 10,000-record `decide/batch` costs about twice as much (issue 16).

Only a body that pass accepts is taken from it. Anything else goes through FastAPI's own steps
(content type, `json.loads`, validation of the objects) and is refused exactly as a route declaring
the model as its body would refuse it: the same `RequestValidationError`s (locations under `body`),
the same 400 for a body that is not text. The route documents its body with `openapi_body`.
"""

from __future__ import annotations

import email.message
import json
from typing import Any, Final, TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_COMPONENTS: Final = "#/components/schemas/{model}"


async def model_body(request: Request, model: type[M]) -> M:
    body = await request.body()
    content_type = request.headers.get("content-type")
    if body and _is_json(content_type):
        try:
            return model.model_validate_json(body)
        except ValidationError:
            pass  # refused (or, for JSON that only `json.loads` reads, taken) the way FastAPI does
    return _as_fastapi_would(body, content_type, model)


async def typed_body(request: Request, adapter: TypeAdapter[T], model: type[BaseModel]) -> T:
    """The body as `adapter`'s type — TypedDicts of the same fields and constraints as `model`, much
    cheaper to build and read than models — refused exactly as `model_body(model)` refuses it (the
    adapter's own errors are never shown: a body it does not take goes through `model`)."""
    body = await request.body()
    if body and _is_json(request.headers.get("content-type")):
        try:
            return adapter.validate_json(body)
        except ValidationError:
            pass
    taken = await model_body(request, model)  # e.g. a BOM or UTF-16: only `json.loads` reads those
    return adapter.validate_python(taken.model_dump(mode="json", exclude_unset=True))


def _is_json(content_type: str | None) -> bool:
    """FastAPI's test: `application/json` or `application/<anything>+json`."""
    if not content_type:
        return False  # FastAPI's strict content type: such a body is not read as JSON
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


def _as_fastapi_would(body: bytes, content_type: str | None, model: type[M]) -> M:
    if not body:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("body",), "msg": "Field required", "input": None}]
        )
    value: Any = body
    if _is_json(content_type):
        try:
            value = json.loads(body)
        except json.JSONDecodeError as exc:
            raise RequestValidationError(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ],
                body=exc.doc,
            ) from exc
        except Exception as exc:  # e.g. bytes that are no UTF-8, -16 or -32 text
            raise HTTPException(status_code=400, detail="There was an error parsing the body") from exc
    try:
        return model.model_validate(value, from_attributes=True)
    except ValidationError as exc:
        errors = [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        raise RequestValidationError(errors, body=value) from exc


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` documenting `model` as the required JSON body (its nested models are
    components the app's other routes already define)."""
    schema = model.model_json_schema(ref_template=_COMPONENTS)
    schema.pop("$defs", None)
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}
