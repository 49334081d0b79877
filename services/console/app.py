"""The console: a small Starlette app that calls the gateway over gRPC and draws what it answers.

Pages: `/` (Search or Recommend, result cards, a "Why?" per result), `/why` (JSON of one result's on-demand
explanation, what the page draws), `/ab` (the `make ab-report` funnel). Charts are SVG drawn by static/console.js
from numbers the server computed (services/console/view.py); each has a table and the sentence as its text
alternative. With an auth token configured, every page but `/healthz` and `/login` needs it (bearer header or the
cookie `/login` sets), as the gateway does.
"""

from __future__ import annotations

import contextlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from services.console import view
from services.console.gateway import Gateway, error_text, shelves

HERE = Path(__file__).parent
COOKIE = "shop_console_token"
PAGE_SIZES = (10, 20, 50)


@dataclass
class ConsoleState:
    gateway: Gateway
    ab_report: Path
    customers: list[str] = field(default_factory=list)
    auth_token: str = ""


def _authorised(request: Request, token: str) -> bool:
    if not token:
        return True
    header = request.headers.get("authorization", "")
    sent = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else request.cookies.get(COOKIE, "")
    return hmac.compare_digest(sent.encode(), token.encode())


class _Auth(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        state: ConsoleState = request.app.state.console
        if (
            request.url.path in ("/healthz", "/login")
            or request.url.path.startswith("/static/")
            or _authorised(request, state.auth_token)
        ):
            return await call_next(request)
        if request.url.path == "/why":
            return JSONResponse({"error": "UNAUTHENTICATED"}, status_code=401)
        return RedirectResponse("/login", status_code=303)


def _int(value: str | None, default: int, allowed: tuple[int, ...] | None = None) -> int:
    try:
        n = int(value) if value else default
    except ValueError:
        return default
    return n if allowed is None or n in allowed else default


async def index(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    q = request.query_params
    query, user_id = q.get("q", "").strip(), q.get("user", "").strip()
    shelf = _int(q.get("shelf"), 0)
    context_ids = [c.strip() for c in q.get("context", "").split(",") if c.strip()]
    size = _int(q.get("size"), 20, PAGE_SIZES)
    context = {
        "request": request,
        "query": query,
        "user_id": user_id,
        "shelf": shelf,
        "size": size,
        "sizes": PAGE_SIZES,
        "context": ", ".join(context_ids),
        "shelves": shelves(),
        "customers": state.customers,
        "error": "",
        "page": None,
    }
    status = 200
    if query or user_id or context_ids:
        try:
            if query:
                answer = await state.gateway.search(query, user_id, size)
            else:
                answer = await state.gateway.recommend(user_id, size, shelf, context_ids)
            context["page"] = {
                "cards": view.cards(answer.results, query),
                "token": answer.attribution_token,
                "variant": answer.variant,
                "versions": view.versions(answer.model_versions),
                "degradations": view.degradations(answer.degradations),
                "kind": "Search" if query else "Recommend",
            }
        except grpc.aio.AioRpcError as exc:
            context["error"] = error_text(exc)
            status = 400 if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else 503
    return request.app.state.templates.TemplateResponse(request, "index.html", context, status_code=status)


async def why(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    token, product_id = request.query_params.get("token", ""), request.query_params.get("product", "")
    if not token or not product_id:
        return JSONResponse({"error": "INVALID_ARGUMENT: token and product are required"}, status_code=400)
    try:
        answer = await state.gateway.explain(token, [product_id])
    except grpc.aio.AioRpcError as exc:
        code = exc.code()
        status = (
            400
            if code == grpc.StatusCode.INVALID_ARGUMENT
            else 409
            if code == grpc.StatusCode.FAILED_PRECONDITION
            else 503
        )
        return JSONResponse({"error": error_text(exc)}, status_code=status)
    return JSONResponse(view.why(answer, product_id))


async def ab(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    try:
        report = json.loads(state.ab_report.read_text())
    except (OSError, ValueError):
        report = None
    context = {
        "request": request,
        "rows": view.funnel(report) if report else [],
        "source": (report or {}).get("source", ""),
        "path": str(state.ab_report),
    }
    return request.app.state.templates.TemplateResponse(request, "ab.html", context)


async def login(request: Request) -> Response:
    state: ConsoleState = request.app.state.console
    if request.method == "POST":
        form = await request.form()
        token = str(form.get("token", ""))
        if state.auth_token and hmac.compare_digest(token.encode(), state.auth_token.encode()):
            response = RedirectResponse("/", status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https")
            return response
        return request.app.state.templates.TemplateResponse(
            request, "login.html", {"request": request, "failed": True}, status_code=401
        )
    return request.app.state.templates.TemplateResponse(request, "login.html", {"request": request, "failed": False})


async def healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    yield
    await app.state.console.gateway.close()


def create_app(state: ConsoleState) -> Starlette:
    app = Starlette(
        lifespan=_lifespan,
        routes=[
            Route("/", index),
            Route("/why", why),
            Route("/ab", ab),
            Route("/login", login, methods=["GET", "POST"]),
            Route("/healthz", healthz),
            Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        ],
        middleware=[Middleware(_Auth)],
    )
    app.state.console = state
    app.state.templates = Jinja2Templates(directory=HERE / "templates")
    return app
