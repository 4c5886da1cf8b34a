"""RFC 9457 problem documents (``application/problem+json``) for every error the API returns.

Each document has ``type`` (a ``urn:geowarn:problem:<slug>`` URI), ``title``, ``status``,
``detail`` (English), ``detail_zh`` (Chinese, for the UI) and ``instance`` (the request path).
A rejected file adds ``problems``: one ``{row, field, reason, value}`` per bad row and field;
a rejected request body adds ``errors`` from validation.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException

from geowarn.errors import FileRejected, GeowarnError

log = logging.getLogger("geowarn.api")

MEDIA_TYPE = "application/problem+json"

_ZH_BY_STATUS = {
    400: "请求无效",
    401: "需要登录",
    403: "没有权限",
    404: "未找到",
    405: "不支持的请求方法",
    409: "数据冲突",
    413: "文件过大",
    422: "输入数据无效",
    428: "缺少版本信息",
    500: "服务器内部错误",
}


class PreconditionRequired(GeowarnError):
    """An update of a versioned record sent neither ``If-Match`` nor ``version`` (RFC 6585)."""

    status = 428
    title = "Precondition required"


class PayloadTooLarge(GeowarnError):
    status = 413
    title = "Payload too large"


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "error"


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    detail_zh: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:geowarn:problem:{_slug(title)}",
        "title": title,
        "status": status,
        "detail": detail,
        "detail_zh": detail_zh or _ZH_BY_STATUS.get(status, detail),
    }
    if instance:
        body["instance"] = instance
    body.update({k: v for k, v in extra.items() if v is not None})
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(jsonable_encoder(body), status_code=status, media_type=MEDIA_TYPE, headers=headers)


async def _geowarn_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, GeowarnError)
    extra: dict[str, Any] = {k: v for k, v in exc.extra.items() if isinstance(v, str | int | float | bool)}
    if isinstance(exc, FileRejected):
        extra["problems"] = [
            {"row": p.row, "field": p.field, "reason": p.reason, "value": p.value} for p in exc.problems
        ]
    if exc.status >= 500:
        log.error("server error: %s", exc.message)
    return problem(
        exc.status,
        exc.title,
        exc.message,
        detail_zh=exc.message_zh,
        instance=request.url.path,
        **extra,
    )


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
        for e in exc.errors()
    ]
    where = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors[:5])
    return problem(
        422,
        "Invalid input",
        f"the request is not valid: {where}",
        detail_zh="请求数据格式不正确：" + where,
        instance=request.url.path,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    try:
        title = HTTPStatus(exc.status_code).phrase
    except ValueError:
        title = "Error"
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers) if exc.headers else None
    return problem(exc.status_code, title, detail, instance=request.url.path, headers=headers)


async def _stale(request: Request, exc: Exception) -> JSONResponse:
    return problem(
        409,
        "Conflict",
        "the record was changed by someone else; reload it and try again",
        detail_zh="记录已被他人修改，请刷新后重试",
        instance=request.url.path,
    )


async def _integrity(request: Request, exc: Exception) -> JSONResponse:
    log.info("integrity error: %s", exc)
    return problem(
        409,
        "Conflict",
        "the change conflicts with existing data (a duplicate code or a missing reference)",
        detail_zh="与现有数据冲突（编号重复或引用的记录不存在）",
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    """Register the problem+json handlers on ``app``."""
    app.add_exception_handler(GeowarnError, _geowarn_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(StaleDataError, _stale)
    app.add_exception_handler(IntegrityError, _integrity)
