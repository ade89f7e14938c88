from __future__ import annotations

import math

from fastapi import APIRouter, HTTPException, Request, Response, status

from cloud_api.api import session_auth
from cloud_api.api.deps import AdminDep, PrincipalDep, SettingsDep, StoreDep
from cloud_api.api.errors import UNPROCESSABLE
from cloud_api.api.schemas import LoginIn, MeOut, TokenOut, UserIn, UserOut
from cloud_api.services.users import InvalidUser, UserExists, authenticate, create_user, issue_token, revoke_token
from cloud_api.storage.records import UserRecord

router = APIRouter(prefix="/auth", tags=["auth"])
protected = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login", response_model=TokenOut, summary="Exchange user name and password for a bearer token",
    responses={401: {"description": "Wrong user name or password"},
               429: {"description": "Too many wrong passwords for this user name from this address; see Retry-After"}},
)
def login(body: LoginIn, request: Request, store: StoreDep, settings: SettingsDep) -> TokenOut:
    user = verified_user(body, request, store)
    issued = issue_token(store, user, settings.token_ttl_s)
    return TokenOut(access_token=issued.token, username=user.username, role=user.role,  # type: ignore[arg-type]
                    expires_ms=issued.expires_ms)


def verified_user(body: LoginIn, request: Request, store: StoreDep) -> UserRecord:
    """The user whose password this is, through the login throttle (429 while locked out, 401 if wrong)."""
    throttle = request.app.state.login_throttle
    address = request.client.host if request.client else "?"
    wait = throttle.retry_after(body.username, address)
    if wait > 0:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            f"too many failed logins for {body.username!r} or from this address; "
                            f"try again in {math.ceil(wait)} s",
                            headers={"Retry-After": str(math.ceil(wait))})
    user = authenticate(store, body.username, body.password)
    if user is None:
        throttle.failed(body.username, address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong user name or password",
                            headers={"WWW-Authenticate": "Bearer"})
    throttle.succeeded(body.username, address)
    return user


@protected.get("/me", response_model=MeOut, summary="Who the presented token belongs to")
def me(principal: PrincipalDep) -> MeOut:
    return MeOut(username=principal.username, role=principal.role, kind=principal.kind)  # type: ignore[arg-type]


@protected.post("/logout", status_code=204, response_class=Response, summary="Revoke the presented login token (a page's session cookie: also cleared)")
def logout(principal: PrincipalDep, store: StoreDep, request: Request) -> Response:
    if principal.kind == "user":
        revoke_token(store, principal.token)
    response = Response(status_code=204)
    if principal.via == "cookie":
        session_auth.clear_session_cookie(response, request)
    return response


@protected.get("/users", response_model=list[UserOut], summary="All users (admin)")
def list_users(_: AdminDep, store: StoreDep) -> list[UserOut]:
    return [UserOut(username=u.username, role=u.role, created_ms=u.created_ms) for u in store.list_users()]  # type: ignore[arg-type]


@protected.post(
    "/users", response_model=UserOut, status_code=201, summary="Create a user (admin)",
    responses={409: {"description": "The user name is taken"}, **UNPROCESSABLE},
)
def add_user(body: UserIn, _: AdminDep, store: StoreDep) -> UserOut:
    try:
        user = create_user(store, body.username, body.password, body.role)
    except UserExists:
        raise HTTPException(status.HTTP_409_CONFLICT, f"user {body.username!r} exists") from None
    except InvalidUser as exc:
        raise HTTPException(422, str(exc)) from None
    return UserOut(username=user.username, role=user.role, created_ms=user.created_ms)  # type: ignore[arg-type]
