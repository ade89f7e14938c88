"""Settings: server URL, sign-in, language, which operator this phone belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from mobile_app.api_client import ApiClient, ApiError, ApiUnreachable
from mobile_app.controllers.session import Session
from mobile_app.i18n import LANGUAGES


@dataclass(frozen=True)
class LoginResult:
    ok: bool
    message: str


class SettingsController:
    def __init__(self, session: Session) -> None:
        self.session = session

    def set_server(self, url: str) -> LoginResult:
        try:
            self.session.set_api_url(url)
        except ValueError as exc:
            return LoginResult(False, str(exc))
        return LoginResult(True, self.session.t("saved"))

    def login(self, username: str, password: str, url: str | None = None) -> LoginResult:
        if url:
            saved = self.set_server(url)
            if not saved.ok:
                return saved
        if not self.session.api_url:
            return LoginResult(False, self.session.t("login_failed", message="no server URL"))
        client = ApiClient(self.session.api_url)
        try:
            body = client.login(username.strip(), password)
        except ApiUnreachable as exc:
            return LoginResult(False, self.session.t("login_failed", message=str(exc)))
        except ApiError as exc:
            return LoginResult(False, self.session.t("login_failed", message=exc.detail))
        finally:
            client.close()
        self.session.set_token(body["access_token"], body.get("username", username), body.get("role"))
        return LoginResult(True, self.session.t("logged_in_as", user=self.session.username, role=self.session.role or "-"))

    def logout(self) -> None:
        """Sign out: the server revokes the token (if reachable); the token and the cache are wiped."""
        self.session.sign_out()

    def set_language(self, lang: str) -> None:
        self.session.set_language(lang)

    @staticmethod
    def languages() -> dict[str, str]:
        return dict(LANGUAGES)

    def set_operator(self, name: str | None) -> None:
        self.session.set_operator(name)
