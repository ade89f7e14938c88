"""Page sessions and token management under ``/api/v1/auth``.

* ``POST /auth/session``: user name + password -> the session cookie (``session_auth``); the token is never
  in the body, so a page's script cannot leak it.
* ``POST /auth/signin-links``: a one-time ``/signin/{code}`` link (single use, ``SIGNIN_CODE_TTL_S``), which
  ``GET /signin/{code}`` (``cloud_api.web.signin``) exchanges for the cookie.
* ``GET /auth/tokens`` and ``DELETE /auth/tokens/{id}``: a user's own login tokens; an admin's, anyone's.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field

from cloud_api.api import session_auth
from cloud_api.api.deps import PrincipalDep, SettingsDep, StoreDep
from cloud_api.api.routes.auth import verified_user
from cloud_api.api.schemas import LoginIn
from cloud_api.services import sessions
from cloud_api.services.users import ROLE_RANK, issue_token

router = APIRouter(prefix="/auth", tags=["auth"])
protected = APIRouter(prefix="/auth", tags=["auth"])


class SessionOut(BaseModel):
    username: str
    role: Literal["admin", "operator", "viewer"]
    expires_ms: int | None = Field(description="When the session ends, epoch ms; null if it does not expire")


class SigninLinkIn(BaseModel):
    username: str | None = Field(default=None, max_length=64,
                                 description="Whose session the link opens; default the caller (others: admin)")
    ttl_s: int = Field(default=sessions.SIGNIN_CODE_TTL_S, ge=30, le=sessions.SIGNIN_CODE_MAX_TTL_S,
                       description="Seconds the link stays usable (if not used before)")


class SigninLinkOut(BaseModel):
    path: str = Field(description="Open this path on the server once, before expires_ms: /signin/<code>")
    username: str
    expires_ms: int


class TokenInfoOut(BaseModel):
    id: str = Field(description="Short id for DELETE /auth/tokens/{id} (not usable to sign in)")
    username: str
    created_ms: int
    last_used_ms: int | None = Field(description="Last use, epoch ms (updated at most once a minute)")
    expires_ms: int | None
    current: bool = Field(description="True for the token that made this request")


@router.post(
    "/session", response_model=SessionOut, summary="Sign a page in: sets the HttpOnly session cookie",
    responses={401: {"description": "Wrong user name or password"},
               403: {"description": "Sent from another site (Origin header)"},
               429: {"description": "Locked out after failed logins; see Retry-After"}},
)
def start_session(body: LoginIn, request: Request, response: Response, store: StoreDep,
                  settings: SettingsDep) -> SessionOut:
    if "origin" in request.headers and not session_auth.same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-site sign-in refused (Origin is not this site)")
    user = verified_user(body, request, store)
    issued = issue_token(store, user, settings.session_ttl_s)
    session_auth.set_session_cookie(response, request, issued.token, settings.session_ttl_s)
    return SessionOut(username=user.username, role=user.role, expires_ms=issued.expires_ms)  # type: ignore[arg-type]


@protected.post(
    "/signin-links", response_model=SigninLinkOut, status_code=201,
    summary="A one-time sign-in link for a page (single use, expires in minutes)",
    responses={403: {"description": "A link for another user needs role admin"},
               404: {"description": "No such user"}, 422: {"description": "A service token must name a user"}},
)
def create_signin_link(body: SigninLinkIn, principal: PrincipalDep, store: StoreDep) -> SigninLinkOut:
    username = body.username or principal.username
    if principal.kind == "service" and body.username is None:
        raise HTTPException(422, "username: a service token must say whose sign-in link to make")
    if username != principal.username and ROLE_RANK[principal.role] < ROLE_RANK["admin"]:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "a sign-in link for another user needs role admin")
    user = store.get_user(username)
    if user is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no user {username!r}")
    link = sessions.issue_signin_code(store, user, body.ttl_s)
    return SigninLinkOut(path=f"/signin/{link.code}", username=user.username, expires_ms=link.expires_ms)


def _scope(principal: PrincipalDep, username: str | None) -> str | None:
    """Whose tokens this caller may see: its own; an admin any user's, or everyone's (None)."""
    if ROLE_RANK[principal.role] >= ROLE_RANK["admin"]:
        return username
    if username is not None and username != principal.username:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "other users' tokens need role admin")
    return principal.username


@protected.get("/tokens", response_model=list[TokenInfoOut], summary="Login tokens: your own (admin: anyone's)",
               responses={403: {"description": "Another user's tokens need role admin"}})
def list_tokens(principal: PrincipalDep, store: StoreDep,
                username: str | None = Query(default=None, max_length=64,
                                             description="Whose tokens; admin only for others; admin default all")
                ) -> list[TokenInfoOut]:
    return [TokenInfoOut(**vars(t)) for t in sessions.list_tokens(store, _scope(principal, username), principal.token)]


@protected.delete("/tokens/{token_id}", status_code=204, response_class=Response,
                  summary="Revoke a login token by its id: your own (admin: anyone's)",
                  responses={404: {"description": "No such token among those you may revoke"}})
def revoke_token(token_id: str, principal: PrincipalDep, store: StoreDep) -> Response:
    if not sessions.revoke_token_by_id(store, token_id, _scope(principal, None)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no token {token_id!r} among those you may revoke")
    return Response(status_code=204)

