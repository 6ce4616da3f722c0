"""`[mcp.servers.NAME]`: MCP servers whose tools agents may call (`turnout.agents.mcp`)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SERVER_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9_-]{0,31}$")


class MCPServerConfig(BaseModel):
    """One MCP server: a command turnout starts (stdio) or a URL (streamable HTTP)."""

    model_config = ConfigDict(extra="forbid")

    command: list[str] | None = Field(None, description="The server's command line, started over stdio.")
    url: str | None = Field(None, description="The server's streamable-HTTP endpoint, e.g. http://127.0.0.1:8000/mcp.")
    env: dict[str, str] = Field(default_factory=dict, description=(
        "Variables for the server's environment, each from a variable of this one: "
        "{GITHUB_TOKEN = \"MY_GITHUB_TOKEN\"} (values never go in config)."))
    headers: dict[str, str] = Field(default_factory=dict, description=(
        "HTTP headers, each from a variable of this environment: {Authorization = \"MCP_TOKEN\"}."))
    cwd: str | None = None
    timeout_s: float = Field(30.0, gt=0, description="Start-up, listing and each call's limit.")
    max_restarts: int = Field(2, ge=0, description="Restarts after a crash before the server is given up.")
    locality: Literal["auto", "local", "remote"] = Field(
        "auto", description="auto: a stdio server or one on loopback is local, any other URL remote.")

    @field_validator("env", "headers")
    @classmethod
    def _names_of_variables(cls, value: dict[str, str]) -> dict[str, str]:
        for key, variable in value.items():
            if not _ENV_NAME.match(variable):
                raise ValueError(f"{key} = {variable!r}: give the name of an environment variable, not its value")
        return value

    @model_validator(mode="after")
    def _one_way_to_reach_it(self) -> MCPServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command = [...] (stdio) or url = \"http://…\" (streamable HTTP)")
        if self.command is not None and not self.command:
            raise ValueError("command is empty: give the server's command line, e.g. [\"python\", \"-m\", \"my_server\"]")
        if self.url is not None and not re.match(r"^https?://[^/\s]+", self.url):
            raise ValueError(f"{self.url!r} is not an HTTP URL: write e.g. http://127.0.0.1:8000/mcp")
        return self


class MCPSettings(BaseModel):
    """`[mcp]`: the MCP servers by name."""

    model_config = ConfigDict(extra="forbid")

    servers: dict[str, MCPServerConfig] = Field(default_factory=dict)

    @field_validator("servers")
    @classmethod
    def _server_names(cls, value: dict[str, MCPServerConfig]) -> dict[str, MCPServerConfig]:
        for name in value:
            if not _SERVER_NAME.match(name):
                raise ValueError(f"{name!r} cannot name an MCP server: use letters, digits, '-' and '_'")
        return value
