"""What the gateway needs to know about a provider's API family.

An adapter maps the path under the provider's mount (`/<name>/...`) to an upstream URL, says how
the tenant's credential is presented (header and scheme), which error dialect its SDKs read, and
where a request names its model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from gateway.errors import Dialect, NotFound


@dataclass(frozen=True, slots=True)
class CredentialPresentation:
    """How a provider expects its API key: a header, with an optional scheme before the secret."""

    header: str
    scheme: str = ""

    def header_for(self, secret: str) -> tuple[str, str]:
        return self.header, f"{self.scheme}{secret}"


@dataclass(frozen=True, slots=True)
class ProviderAdapter:
    name: str
    kind: str
    dialect: Dialect
    base_url: str
    api_root: str
    allowed_prefixes: tuple[str, ...]
    credential: CredentialPresentation
    credential_mode: str
    model_in_path: re.Pattern[str] | None = None

    @property
    def mount(self) -> str:
        return f"/{self.name}"

    def upstream_url(self, path: str, query: str) -> str:
        """The upstream URL for `path` (normalised, relative to the mount), or `NotFound`."""
        if not path.startswith(self.allowed_prefixes):
            raise NotFound(f"{path} is not an API path of provider {self.name!r}")
        url = self.base_url + path[len(self.api_root) :]
        return f"{url}?{query}" if query else url

    def model_from_path(self, path: str) -> str | None:
        """The model a path names (Gemini's `models/{model}:method`, Azure's deployment), if any; read as
        the provider reads it, with its escapes undone (`gemini-2.5-flash%3AgenerateContent`, as some
        clients escape the colon, names `gemini-2.5-flash`)."""
        if self.model_in_path is None:
            return None
        match = self.model_in_path.search(path)
        if match is None:
            return None
        model = match.group(1)
        return unquote(model).partition(":")[0] if "%" in model else model
